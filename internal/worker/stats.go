package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// statsStore keeps each shard's and partition's statistics of one job step
// in a Redis hash, keyed by shard or partition, so that a retried task
// overwrites its own entry and the step's summary adds each piece once.
type statsStore struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

func statsKey(runID, step string) string { return "sluice:stats:" + runID + "/" + step }

func (s *statsStore) put(ctx context.Context, runID, step, field string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	key := statsKey(runID, step)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, field, b)
		p.Expire(ctx, key, s.ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("save stats %s %s: %w", key, field, err)
	}
	return nil
}

func (s *statsStore) all(ctx context.Context, runID, step string) (map[string]string, error) {
	h, err := s.rdb.HGetAll(ctx, statsKey(runID, step)).Result()
	if err != nil {
		return nil, fmt.Errorf("read stats of %s/%s: %w", runID, step, err)
	}
	return h, nil
}
