package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"sluice/pipeline/job"
)

// Barrier is the fan-in point of a fanned-out phase: each task reports its
// arrival once it has finished, and exactly one arrival learns that it
// completed the set, however often tasks are retried or delivered.
//
// asynq has no "when all tasks finish" primitive (its group aggregation fires
// on time or size), so the barrier is a Redis set of finished members and a
// Lua script that adds to it and compares its size with the expected total
// in one atomic step.
type Barrier struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// NewBarrier returns a barrier whose keys expire ttl after their last
// arrival, so abandoned runs do not leak keys.
func NewBarrier(rdb redis.UniversalClient, ttl time.Duration) *Barrier {
	return &Barrier{rdb: rdb, ttl: ttl}
}

// KEYS[1] set of arrived ids, KEYS[2] completion marker.
// ARGV[1] id, ARGV[2] total, ARGV[3] ttl seconds.
var arrive = redis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local n = redis.call('SCARD', KEYS[1])
if n < tonumber(ARGV[2]) then
  return {n, 0, 0}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[3]) then
  return {n, 1, 1}
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {n, 1, 0}
`)

// Arrive records that member of the barrier named key has finished. total is
// how many distinct members complete it. The arrival is the job's
// (job.Arrival): this is the barrier of job.Barrier, keyed by name.
func (b *Barrier) Arrive(ctx context.Context, key, member string, total int) (job.Arrival, error) {
	if total <= 0 {
		return job.Arrival{}, fmt.Errorf("barrier %s: total must be positive, got %d", key, total)
	}
	res, err := arrive.Run(ctx, b.rdb, []string{key, key + ":complete"}, member, total, int(b.ttl.Seconds())).Int64Slice()
	if err != nil {
		return job.Arrival{}, fmt.Errorf("barrier %s arrive %s: %w", key, member, err)
	}
	return job.Arrival{Arrived: int(res[0]), Complete: res[1] == 1, First: res[2] == 1}, nil
}

// Arrived lists the members that have arrived, for progress reports.
func (b *Barrier) Arrived(ctx context.Context, key string) (int, error) {
	n, err := b.rdb.SCard(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("barrier %s: %w", key, err)
	}
	return int(n), nil
}

// Step is the barrier of one job step, for pipeline/job: its phases'
// keys are named after the run and step.
func (b *Barrier) Step(runID, step string) job.Barrier { return stepBarrier{b, runID, step} }

type stepBarrier struct {
	b           *Barrier
	runID, step string
}

func (s stepBarrier) Arrive(ctx context.Context, phase, member string, total int) (job.Arrival, error) {
	return s.b.Arrive(ctx, barrierKey(s.runID, s.step, phase), member, total)
}
