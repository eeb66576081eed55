package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Position is a place in run history: the newest end (the zero Position),
// or just after a run, by the run's creation time (milliseconds, the index's
// score) and id. History is ordered newest first, and among runs created in
// the same millisecond by id, descending.
type Position struct {
	CreatedMS int64
	ID        string
}

// PositionOf is the position just after r.
func PositionOf(r Run) Position { return Position{CreatedMS: r.Created.UnixMilli(), ID: r.ID} }

// After reports whether a run at p comes after (is older than) q in
// history order.
func (p Position) After(q Position) bool {
	if p.CreatedMS != q.CreatedMS {
		return p.CreatedMS < q.CreatedMS
	}
	return p.ID < q.ID
}

// sameMillisecondSlack is how many runs created in the same millisecond
// as a position's run ListBefore reads past; starts are rarely that dense.
const sameMillisecondSlack = 32

// ListBefore returns up to n of wf's runs older than pos (from the newest
// with the zero Position), newest first, in one read of the index and one
// pipelined read of the runs. more is false when the index holds nothing
// older. Runs whose records expired are dropped from the index as they are
// met.
func (s *Runs) ListBefore(ctx context.Context, wf string, pos Position, n int) (runs []Run, more bool, err error) {
	max := "+inf"
	if pos != (Position{}) {
		max = strconv.FormatInt(pos.CreatedMS, 10)
	}
	entries, err := s.rdb.ZRevRangeByScoreWithScores(ctx, indexKey(wf), &redis.ZRangeBy{Max: max, Min: "-inf", Count: int64(n + sameMillisecondSlack)}).Result()
	if err != nil {
		return nil, false, fmt.Errorf("list runs of %s: %w", wf, err)
	}
	more = len(entries) == n+sameMillisecondSlack
	var ids []string
	for _, e := range entries {
		id, _ := e.Member.(string)
		p := Position{CreatedMS: int64(e.Score), ID: id}
		if pos != (Position{}) && !p.After(pos) {
			continue
		}
		if len(ids) == n {
			more = true
			break
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, more, nil
	}
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.HGetAll(ctx, runKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("list runs of %s: %w", wf, err)
	}
	var gone []any
	for i, c := range cmds {
		r, err := decodeRun(ids[i], c.(*redis.MapStringStringCmd).Val())
		if errors.Is(err, ErrNotFound) {
			gone = append(gone, ids[i])
			continue
		}
		if err != nil {
			return nil, false, err
		}
		runs = append(runs, r)
	}
	if len(gone) > 0 {
		// Housekeeping only: the index would otherwise keep every run ever.
		_ = s.rdb.ZRem(ctx, indexKey(wf), gone...).Err()
	}
	return runs, more, nil
}

// Workflows lists the workflows that have run history in Redis (an index
// of runs), for readers that have no workflow files at hand.
func (s *Runs) Workflows(ctx context.Context) ([]string, error) {
	prefix := indexKey("")
	var out []string
	iter := s.rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		out = append(out, strings.TrimPrefix(iter.Val(), prefix))
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
