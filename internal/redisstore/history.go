package redisstore

import (
	"context"
	"slices"
	"strings"
)

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
