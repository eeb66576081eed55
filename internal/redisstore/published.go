package redisstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"sluice/pipeline/civil"
)

// Published is the newest partition a job step published rows in, and
// the run that did.
type Published struct {
	Date  civil.Date
	RunID string
	At    time.Time
}

// KEYS: 1 the workflow's published hash. ARGV: 1 step, 2 date, 3 run, 4 at.
// A date older than the one recorded changes nothing (a backfill does not
// make the table older).
var publishedScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1] .. ':date')
if cur and cur > ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1] .. ':date', ARGV[2], ARGV[1] .. ':run', ARGV[3], ARGV[1] .. ':at', ARGV[4])
return 1
`)

// RecordPublished records that run published rows in date's partition of
// step's table, if no newer date is recorded.
func (s *Runs) RecordPublished(ctx context.Context, wf, step string, date civil.Date, runID string) error {
	err := publishedScript.Run(ctx, s.rdb, []string{publishedKey(wf)}, step, date.String(), runID, s.now().UTC().Format(time.RFC3339)).Err()
	if err != nil {
		return fmt.Errorf("record published partition of %s %s: %w", wf, step, err)
	}
	return nil
}

// Published reads the newest published partition of every job step of wf
// that has one.
func (s *Runs) Published(ctx context.Context, wf string) (map[string]Published, error) {
	h, err := s.rdb.HGetAll(ctx, publishedKey(wf)).Result()
	if err != nil {
		return nil, fmt.Errorf("read published partitions of %s: %w", wf, err)
	}
	out := map[string]Published{}
	for k, v := range h {
		step, ok := strings.CutSuffix(k, ":date")
		if !ok {
			continue
		}
		d, err := civil.Parse(v)
		if err != nil {
			continue
		}
		at, _ := time.Parse(time.RFC3339, h[step+":at"])
		out[step] = Published{Date: d, RunID: h[step+":run"], At: at}
	}
	return out, nil
}
