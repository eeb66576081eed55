package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeline keeps, per run, a record of every task attempt (which worker,
// when, how it ended) and the log lines each attempt wrote: what the run
// page's Gantt chart and task logs show. Both are bounded (MaxTasks
// records a run, MaxLogLines lines a task) and expire with the run's
// retention. Workers write them as advice: a lost write loses a bar or a
// line, never a run.
type Timeline struct {
	rdb redis.UniversalClient
	// Retention is how long a run's records live after their last write
	// (the run's own retention).
	Retention time.Duration
	// MaxTasks bounds the task records of one run; MaxLogLines the log
	// lines kept of one task (the newest), over all its attempts.
	MaxTasks    int
	MaxLogLines int
	// MaxAttempts bounds the attempts one record lists (the newest);
	// AttemptCount keeps counting.
	MaxAttempts int
}

// NewTimeline returns the timeline store over rdb.
func NewTimeline(rdb redis.UniversalClient) *Timeline {
	return &Timeline{rdb: rdb, Retention: 30 * 24 * time.Hour, MaxTasks: 10000, MaxLogLines: 1000, MaxAttempts: 10}
}

// Task outcomes.
const (
	OutcomeRunning = "running"
	// OutcomeSucceeded: the task did its work.
	OutcomeSucceeded = "succeeded"
	// OutcomeSkipped: its step had already ended; it did nothing.
	OutcomeSkipped = "skipped"
	// OutcomeStopped: its run ended while it ran (cancelled, or failed by
	// another task); it stopped without finishing.
	OutcomeStopped = "stopped"
	// OutcomeRetrying: it failed and asynq will try it again.
	OutcomeRetrying = "failed, will retry"
	// OutcomeFailed: it failed for the last time (retries used up, or an
	// error no retry can fix); asynq archived it and its step failed.
	OutcomeFailed = "failed"
	// OutcomeHandedBack: its worker shut down; the task went back to its
	// queue without counting a retry.
	OutcomeHandedBack = "handed back"
	// OutcomeLost: its worker died without saying how it ended (SIGKILL,
	// OOM); asynq ran it again after its lease lapsed.
	OutcomeLost = "lost"
)

// TaskRecord is what the timeline knows of one task of a run.
type TaskRecord struct {
	ID    string `json:"id"`
	Step  string `json:"step"`
	Type  string `json:"type"`
	Queue string `json:"queue"`
	// Attempts are the newest MaxAttempts attempts, oldest first;
	// AttemptCount counts them all.
	Attempts     []Attempt `json:"attempts"`
	AttemptCount int       `json:"attempt_count"`
	// LogLines counts the lines its attempts logged (some may have been
	// left out of the kept log, see MaxLogLines).
	LogLines int `json:"log_lines"`
}

// Attempt is one attempt of a task.
type Attempt struct {
	N       int       `json:"n"` // 1 for the first
	Worker  string    `json:"worker"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Outcome string    `json:"outcome"`
	Error   string    `json:"error,omitempty"`
}

// Last is the newest attempt (the zero Attempt when there is none).
func (r TaskRecord) Last() Attempt {
	if len(r.Attempts) == 0 {
		return Attempt{}
	}
	return r.Attempts[len(r.Attempts)-1]
}

// First is the oldest attempt kept.
func (r TaskRecord) First() Attempt {
	if len(r.Attempts) == 0 {
		return Attempt{}
	}
	return r.Attempts[0]
}

func timelineKey(runID string) string { return keyPrefix + "tasks:" + runID }

func taskLogKey(runID, taskID string) string { return keyPrefix + "tasklog:" + runID + ":" + taskID }

// droppedField counts the tasks of a run left out past MaxTasks (task ids
// always hold ':', this field does not).
const droppedField = "dropped"

// KEYS: 1 the run's timeline. ARGV: 1 task id, 2 record, 3 max tasks,
// 4 retention ms. A task not yet recorded is left out once the run holds
// max tasks (and counted).
var putTaskScript = redis.NewScript(`
local n = redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], 'dropped')
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and n >= tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], 'dropped', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// Begin records that an attempt of a task started: attempt a joins the
// task's record (an earlier attempt still "running" is marked lost: its
// worker died without a word). Attempts are numbered in the order they
// start (a.N is ignored: asynq's retry count starts again when a retry of
// the run sends an archived task back), and Begin returns a's number, for
// End.
func (tl *Timeline) Begin(ctx context.Context, runID string, rec TaskRecord, a Attempt) (int, error) {
	cur, err := tl.get(ctx, runID, rec.ID)
	if err != nil {
		return 0, err
	}
	if cur.ID == "" {
		cur = rec
	}
	for i := range cur.Attempts {
		if cur.Attempts[i].Outcome == OutcomeRunning {
			cur.Attempts[i].Outcome = OutcomeLost
		}
	}
	cur.AttemptCount++
	a.N, a.Outcome = cur.AttemptCount, OutcomeRunning
	cur.Attempts = append(cur.Attempts, a)
	if over := len(cur.Attempts) - tl.MaxAttempts; over > 0 {
		cur.Attempts = cur.Attempts[over:]
	}
	return a.N, tl.put(ctx, runID, cur)
}

// End records how attempt n of a task ended, and appends the lines it
// logged (JSON objects, one a line; the task keeps the newest
// MaxLogLines).
func (tl *Timeline) End(ctx context.Context, runID, taskID string, n int, ended time.Time, outcome, errText string, lines [][]byte) error {
	cur, err := tl.get(ctx, runID, taskID)
	if err != nil {
		return err
	}
	if cur.ID == "" {
		return nil // left out (MaxTasks), or expired
	}
	for i := range cur.Attempts {
		if cur.Attempts[i].N == n {
			cur.Attempts[i].Ended, cur.Attempts[i].Outcome, cur.Attempts[i].Error = ended, outcome, errText
		}
	}
	cur.LogLines += len(lines)
	if len(lines) > 0 {
		key := taskLogKey(runID, taskID)
		args := make([]any, len(lines))
		for i, l := range lines {
			args[i] = l
		}
		_, err := tl.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.RPush(ctx, key, args...)
			p.LTrim(ctx, key, int64(-tl.MaxLogLines), -1)
			p.PExpire(ctx, key, tl.Retention)
			return nil
		})
		if err != nil {
			return fmt.Errorf("task log of %s: %w", taskID, err)
		}
	}
	return tl.put(ctx, runID, cur)
}

func (tl *Timeline) get(ctx context.Context, runID, taskID string) (TaskRecord, error) {
	var rec TaskRecord
	v, err := tl.rdb.HGet(ctx, timelineKey(runID), taskID).Result()
	if errors.Is(err, redis.Nil) {
		return rec, nil
	}
	if err != nil {
		return rec, fmt.Errorf("timeline of %s: %w", runID, err)
	}
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return rec, fmt.Errorf("timeline of %s: task %s: %w", runID, taskID, err)
	}
	return rec, nil
}

func (tl *Timeline) put(ctx context.Context, runID string, rec TaskRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	err = putTaskScript.Run(ctx, tl.rdb, []string{timelineKey(runID)}, rec.ID, b, tl.MaxTasks, tl.Retention.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("timeline of %s: %w", runID, err)
	}
	return nil
}

// Tasks reads a run's task records, by first start, and how many tasks
// were left out past MaxTasks.
func (tl *Timeline) Tasks(ctx context.Context, runID string) ([]TaskRecord, int, error) {
	h, err := tl.rdb.HGetAll(ctx, timelineKey(runID)).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("timeline of %s: %w", runID, err)
	}
	dropped, _ := strconv.Atoi(h[droppedField])
	out := make([]TaskRecord, 0, len(h))
	for k, v := range h {
		if k == droppedField {
			continue
		}
		var rec TaskRecord
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			return nil, 0, fmt.Errorf("timeline of %s: task %s: %w", runID, k, err)
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].First().Started, out[j].First().Started
		if !a.Equal(b) {
			return a.Before(b)
		}
		return out[i].ID < out[j].ID
	})
	return out, dropped, nil
}

// Log reads the kept log lines of a task (JSON objects, oldest first).
func (tl *Timeline) Log(ctx context.Context, runID, taskID string) ([]string, error) {
	lines, err := tl.rdb.LRange(ctx, taskLogKey(runID, taskID), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", taskID, err)
	}
	return lines, nil
}
