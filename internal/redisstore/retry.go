package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"sluice/pipeline/workflow"
)

// ErrNotFailed is returned by Retry for a run that is not FAILED.
var ErrNotFailed = errors.New("run has not failed")

// RetryOptions qualify Retry.
type RetryOptions struct {
	// By says who asked.
	By string
	// AllowShrink, when true, lets the retried run through the shrink
	// guard (see Run.AllowShrink); false keeps the run's own setting.
	AllowShrink bool
	// GuardDays: see StartOptions.
	GuardDays int
}

// KEYS: 1 active runs hash, 2 run hash, 3 the run's notice claim.
// ARGV: 1 id, 2 the run's "updated" as read, 3 active ttl ms, 4 now ms,
// 5 window start, 6 window end, 7 start less the guard days, 8 end plus
// them, 9 the run keys' prefix, 10.. hash pairs.
// Returns {1} retried, {4} the run changed since it was read, {2, id} an
// active run whose window overlaps (or comes within the guard days, or is
// the same), {3, id} an active run that claimed the table.
var retryScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'updated') ~= ARGV[2] or redis.call('HGET', KEYS[2], 'state') ~= 'FAILED' then
  return {4}
end
local active = redis.call('HGETALL', KEYS[1])
for i = 1, #active, 2 do
  local id = active[i]
  local s, e, created, claim = string.match(active[i + 1], '^(%S+) (%S+) (%d+) ?(%a*)$')
  local state = redis.call('HGET', ARGV[9] .. id, 'state')
  if state ~= 'RUNNING' or tonumber(ARGV[4]) - tonumber(created) > tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[1], id)
  elseif claim == 'table' then
    return {3, id}
  elseif s <= ARGV[8] and ARGV[7] <= e then
    return {2, id}
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[5] .. ' ' .. ARGV[6] .. ' ' .. ARGV[4])
redis.call('HSET', KEYS[2], unpack(ARGV, 10))
redis.call('HDEL', KEYS[2], 'ended')
redis.call('DEL', KEYS[3])
return {1}
`)

// Retry takes a FAILED run up again (see workflow.Retry): its failed steps
// become RUNNING, with their errors kept as PreviousError, the run RUNNING
// and its window active again, unless an active run's window overlaps it
// or comes within GuardDays (ErrOverlap, with that run). It returns the
// run as it is now and the steps to resume; enqueuing their remaining work
// is the caller's (orchestrator.Retry).
func (s *Runs) Retry(ctx context.Context, wf *workflow.Workflow, runID string, opts RetryOptions) (Run, []string, error) {
	for range 50 {
		run, err := s.Get(ctx, runID)
		if err != nil {
			return run, nil, err
		}
		if run.State != workflow.Failed {
			return run, nil, fmt.Errorf("retry run %s: %w: it is %s", runID, ErrNotFailed, run.State)
		}
		tr, err := wf.Retry(run.States())
		if err != nil {
			return run, nil, fmt.Errorf("retry run %s: %w", runID, err)
		}
		now := s.now().UTC()
		fields := []any{"state", string(tr.Run), "updated", now.Format(time.RFC3339Nano), "retries", strconv.Itoa(run.Retries + 1), "retried_by", opts.By}
		if opts.AllowShrink {
			fields = append(fields, "allow_shrink", "true")
		}
		for name, st := range tr.States {
			rec := run.Steps[name]
			if rec.State == st {
				continue
			}
			if st == workflow.Running {
				rec.PreviousError, rec.Error = rec.Error, ""
				rec.Started, rec.Ended = now, time.Time{}
				rec.Retries++
			}
			rec.State = st
			b, _ := json.Marshal(rec)
			fields = append(fields, "step:"+name, string(b))
		}
		args := append([]any{runID, run.Updated.Format(time.RFC3339Nano), s.ActiveTTL.Milliseconds(), now.UnixMilli(),
			run.Window.Start.String(), run.Window.End.String(), run.Window.Start.AddDays(-opts.GuardDays).String(), run.Window.End.AddDays(opts.GuardDays).String(), runKey("")}, fields...)
		res, err := retryScript.Run(ctx, s.rdb, []string{activeKey(wf.Name), runKey(runID), notifiedKey(runID)}, args...).Slice()
		if err != nil {
			return run, nil, fmt.Errorf("retry run %s: %w", runID, err)
		}
		switch res[0].(int64) {
		case 4:
			continue // the run changed since it was read: read it again
		case 2, 3:
			other, err := s.Get(ctx, res[1].(string))
			if err != nil {
				return run, nil, err
			}
			why := "its window overlaps or comes within the jobs' dedupe_horizon_days of"
			if res[0].(int64) == 3 {
				why = "the table is claimed for a schema change by"
			}
			return other, nil, fmt.Errorf("retry run %s: %w: %s %s (%s), which is running; retry when it has ended", runID, ErrOverlap, why, other.ID, other.Window)
		}
		run, err = s.Get(ctx, runID)
		return run, tr.Start, err
	}
	return Run{}, nil, fmt.Errorf("retry run %s: too much contention", runID)
}
