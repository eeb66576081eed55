package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"sluice/pipeline/civil"
	"sluice/pipeline/workflow"
)

// ErrNotFound is returned for an unknown run id.
var ErrNotFound = errors.New("run not found")

// Runs reads and writes runs: one hash per run with the state of the run
// and of every step, an index of runs per workflow, and the keys that stop a
// second run of the same workflow and window (or an overlapping window) from
// starting while one is active, or a schedule tick from starting two runs
// when several schedulers fire it.
//
// State changes go through Redis transactions (WATCH/MULTI) around the pure
// state machine of pipeline/workflow, so concurrent workers finishing steps
// of the same run never lose an update and each step finishes once.
type Runs struct {
	rdb redis.UniversalClient
	// ActiveTTL bounds how long a run that never ends (say, its Redis
	// records were lost halfway) blocks a new run of the same window.
	ActiveTTL time.Duration
	// Retention is how long finished runs stay readable.
	Retention time.Duration
	now       func() time.Time
}

// NewRuns returns the run store over rdb.
func NewRuns(rdb redis.UniversalClient) *Runs {
	return &Runs{rdb: rdb, ActiveTTL: 48 * time.Hour, Retention: 30 * 24 * time.Hour, now: time.Now}
}

// Run is one run of a workflow over a window of dates.
type Run struct {
	ID       string
	Workflow string
	Window   civil.Window
	State    workflow.StepState
	Trigger  string // what started it: a trigger name, "on-demand", "api", …
	// By says who or what asked for the run, when known (the API's
	// caller, the command line).
	By string
	// Force rebuilds every partition of the window, even those whose inputs
	// are unchanged since they were last built.
	Force bool
	// AllowShrink lets the run replace published partitions with far
	// fewer rows than they were built from (the job refuses otherwise).
	AllowShrink bool
	Created     time.Time
	Updated     time.Time
	Ended       time.Time // zero while running
	Steps       map[string]StepRecord
	// Retries counts how often the run was retried after failing
	// (Runs.Retry), RetriedBy who asked last.
	Retries   int
	RetriedBy string
}

// StepRecord is one step's part of a run.
type StepRecord struct {
	State   workflow.StepState `json:"state"`
	Started time.Time          `json:"started,omitzero"`
	Ended   time.Time          `json:"ended,omitzero"`
	Error   string             `json:"error,omitempty"`
	// Summary is what the step reports about its work (crawl result,
	// transform reconciliation), as JSON.
	Summary json.RawMessage `json:"summary,omitempty"`
	// Progress is a free-form line about long work, e.g. "map 12/40".
	Progress string `json:"progress,omitempty"`
	// Retries counts the times a retry of the run resumed this step;
	// PreviousError is the error it failed with before the last one.
	Retries       int    `json:"retries,omitempty"`
	PreviousError string `json:"previous_error,omitempty"`
}

// ErrOverlap is returned by Start when the window overlaps, without being
// equal to, the window of an active run of the same workflow, comes within
// StartOptions.GuardDays of it, or that run has claimed the whole table
// (ClaimTable).
var ErrOverlap = errors.New("window overlaps an active run")

// StartOptions qualify Start.
type StartOptions struct {
	Trigger string
	By      string
	// Dedupe, when set, is a key that makes the start happen once however
	// many schedulers try it (see DedupeKey).
	Dedupe string
	// Force and AllowShrink: see Run.
	Force       bool
	AllowShrink bool
	// GuardDays widens the overlap check: a window that comes within this
	// many days of an active run's is refused too. A job's rebuilt date
	// reads the keys published on the dates around it (its
	// dedupe_horizon_days), so two runs that close to each other could
	// each publish a key the other's date also holds.
	GuardDays int
}

// Started is the outcome of Start.
type Started struct {
	Run     Run
	Created bool     // false: an active run (or the deduplicated one) was returned
	Start   []string // steps to enqueue now (only when Created)
}

// An active runs entry is "START END CREATED_MS", then " table" once the
// run has claimed the whole table (ClaimTable).
//
// KEYS: 1 active runs hash, 2 dedupe (or a dummy), 3 run hash, 4 index.
// ARGV: 1 id, 2 active ttl ms, 3 dedupe ttl s (0: no dedupe), 4 now ms (score),
// 5 retention s, 6 window start, 7 window end, 8 the run keys' prefix,
// 9 window start less the guard days, 10 window end plus them, 11.. hash pairs.
// Returns {1, id} created, {0, id} the same window's active run (or the
// deduplicated one), {2, id} an active run whose window overlaps (or comes
// within the guard days), {3, id} an active run that claimed the table.
var startScript = redis.NewScript(`
if ARGV[3] ~= '0' then
  local prev = redis.call('GET', KEYS[2])
  if prev then return {0, prev} end
end
local active = redis.call('HGETALL', KEYS[1])
for i = 1, #active, 2 do
  local id = active[i]
  local s, e, created, claim = string.match(active[i + 1], '^(%S+) (%S+) (%d+) ?(%a*)$')
  local state = redis.call('HGET', ARGV[8] .. id, 'state')
  if state ~= 'RUNNING' or tonumber(ARGV[4]) - tonumber(created) > tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[1], id)
  elseif s == ARGV[6] and e == ARGV[7] then
    if ARGV[3] ~= '0' then redis.call('SET', KEYS[2], id, 'EX', ARGV[3]) end
    return {0, id}
  elseif claim == 'table' then
    return {3, id}
  elseif s <= ARGV[10] and ARGV[9] <= e then
    return {2, id}
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[6] .. ' ' .. ARGV[7] .. ' ' .. ARGV[4])
if ARGV[3] ~= '0' then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3]) end
redis.call('HSET', KEYS[3], unpack(ARGV, 11))
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return {1, ARGV[1]}
`)

// Start creates a run of wf over win, unless a run of the same workflow and
// window is still active (then that run is returned), opts.Dedupe was
// already used, or an active run's window overlaps win (ErrOverlap, with
// that run).
func (s *Runs) Start(ctx context.Context, wf *workflow.Workflow, win civil.Window, opts StartOptions) (Started, error) {
	now := s.now().UTC()
	id := newRunID(wf.Name, win, now)
	tr := wf.Begin()
	fields := []any{
		"workflow", wf.Name, "window_start", win.Start.String(), "window_end", win.End.String(),
		"state", string(tr.Run), "trigger", opts.Trigger, "by", opts.By, "force", strconv.FormatBool(opts.Force), "allow_shrink", strconv.FormatBool(opts.AllowShrink),
		"created", now.Format(time.RFC3339Nano), "updated", now.Format(time.RFC3339Nano),
	}
	for name, st := range tr.States {
		rec := StepRecord{State: st}
		if st == workflow.Running || (st == workflow.Succeeded && wf.Step(name).Trigger != nil) {
			rec.Started = now
		}
		if st == workflow.Succeeded {
			rec.Ended = now
		}
		b, _ := json.Marshal(rec)
		fields = append(fields, "step:"+name, string(b))
	}
	dedupe, dedupeTTL := opts.Dedupe, 0
	if dedupe != "" {
		dedupeTTL = int((7 * 24 * time.Hour).Seconds())
	} else {
		dedupe = noDedupeKey
	}
	args := append([]any{id, s.ActiveTTL.Milliseconds(), dedupeTTL, now.UnixMilli(), int(s.Retention.Seconds()), win.Start.String(), win.End.String(), runKey(""),
		win.Start.AddDays(-opts.GuardDays).String(), win.End.AddDays(opts.GuardDays).String()}, fields...)
	res, err := startScript.Run(ctx, s.rdb, []string{activeKey(wf.Name), dedupe, runKey(id), indexKey(wf.Name)}, args...).Slice()
	if err != nil {
		return Started{}, fmt.Errorf("start run of %s %s: %w", wf.Name, win, err)
	}
	created := res[0].(int64) == 1
	runID := res[1].(string)
	run, err := s.Get(ctx, runID)
	if err != nil {
		return Started{}, err
	}
	switch res[0].(int64) {
	case 2:
		near := ""
		if opts.GuardDays > 0 {
			near = fmt.Sprintf(" or comes within %d day(s) of it (the job's dedupe_horizon_days)", opts.GuardDays)
		}
		return Started{Run: run}, fmt.Errorf("start run of %s %s: %w: the window overlaps%s: %s (%s) is still running; wait for it to end", wf.Name, win, ErrOverlap, near, run.ID, run.Window)
	case 3:
		return Started{Run: run}, fmt.Errorf("start run of %s %s: %w: %s (%s) is rewriting the table's files for a schema change; wait for it to end", wf.Name, win, ErrOverlap, run.ID, run.Window)
	}
	out := Started{Run: run, Created: created}
	if created {
		out.Start = tr.Start
	}
	return out, nil
}

func newRunID(wf string, win civil.Window, now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s.%s.%s.%s", wf, strings.ReplaceAll(win.String(), "-", ""), now.Format("20060102T150405Z"), hex.EncodeToString(b[:]))
}

// Get reads one run.
func (s *Runs) Get(ctx context.Context, id string) (Run, error) {
	return readRun(ctx, s.rdb, id)
}

// readRun reads one run through c: the client, or a transaction that
// watches the run's key.
func readRun(ctx context.Context, c interface {
	HGetAll(ctx context.Context, key string) *redis.MapStringStringCmd
}, id string) (Run, error) {
	h, err := c.HGetAll(ctx, runKey(id)).Result()
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", id, err)
	}
	return decodeRun(id, h)
}

func decodeRun(id string, h map[string]string) (Run, error) {
	if len(h) == 0 {
		return Run{}, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	win, err := civil.ParseWindow(h["window_start"], h["window_end"])
	if err != nil {
		return Run{}, fmt.Errorf("run %s: %w", id, err)
	}
	r := Run{ID: id, Workflow: h["workflow"], Window: win, State: workflow.StepState(h["state"]), Trigger: h["trigger"], By: h["by"], Steps: map[string]StepRecord{}}
	r.Force, _ = strconv.ParseBool(h["force"])
	r.AllowShrink, _ = strconv.ParseBool(h["allow_shrink"])
	r.Retries, _ = strconv.Atoi(h["retries"])
	r.RetriedBy = h["retried_by"]
	r.Created, _ = time.Parse(time.RFC3339Nano, h["created"])
	r.Updated, _ = time.Parse(time.RFC3339Nano, h["updated"])
	if e := h["ended"]; e != "" {
		r.Ended, _ = time.Parse(time.RFC3339Nano, e)
	}
	for k, v := range h {
		name, ok := strings.CutPrefix(k, "step:")
		if !ok {
			continue
		}
		var rec StepRecord
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			return Run{}, fmt.Errorf("run %s step %s: %w", id, name, err)
		}
		r.Steps[name] = rec
	}
	return r, nil
}

// States is the state of every step of the run.
func (r Run) States() workflow.States {
	st := make(workflow.States, len(r.Steps))
	for k, v := range r.Steps {
		st[k] = v.State
	}
	return st
}

// List returns the newest runs of a workflow, newest first.
func (s *Runs) List(ctx context.Context, wf string, limit int) ([]Run, error) {
	ids, err := s.rdb.ZRevRange(ctx, indexKey(wf), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", wf, err)
	}
	var runs []Run
	for _, id := range ids {
		r, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // expired
		}
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// Finished is the outcome of Finish.
type Finished struct {
	Run Run
	// Changed is false when the step had already finished (a duplicate or
	// retried completion); the caller should still make sure the steps in
	// Run that are RUNNING have their tasks, which is idempotent.
	Changed bool
	Start   []string // steps this finish started
}

// Finish records that a crawler or job step ended, fires the triggers that
// now hold and ends the run when nothing is left running.
func (s *Runs) Finish(ctx context.Context, wf *workflow.Workflow, runID, step string, result workflow.StepState, summary any, stepErr error) (Finished, error) {
	var out Finished
	key := runKey(runID)
	txf := func(tx *redis.Tx) error {
		run, err := readRun(ctx, tx, runID)
		if err != nil {
			return err
		}
		out = Finished{Run: run}
		if run.Steps[step].State != workflow.Running {
			return nil
		}
		tr, err := wf.Finish(run.States(), step, result)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		fields := []any{"state", string(tr.Run), "updated", now.Format(time.RFC3339Nano)}
		for name, st := range tr.States {
			rec := run.Steps[name]
			if rec.State == st {
				continue
			}
			rec.State = st
			switch {
			case st == workflow.Running:
				rec.Started = now
			case name == step:
				rec.Ended = now
				if summary != nil {
					rec.Summary, _ = json.Marshal(summary)
				}
				if stepErr != nil {
					rec.Error = stepErr.Error()
				}
				rec.Progress = ""
			case st == workflow.Succeeded: // a trigger that fired
				rec.Started, rec.Ended = now, now
			}
			run.Steps[name] = rec
			b, _ := json.Marshal(rec)
			fields = append(fields, "step:"+name, string(b))
		}
		ended := tr.Run != workflow.Running
		if ended {
			fields = append(fields, "ended", now.Format(time.RFC3339Nano))
			run.Ended = now
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, fields...)
			if ended {
				p.HDel(ctx, activeKey(wf.Name), runID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		run.State, run.Updated = tr.Run, now
		out = Finished{Run: run, Changed: true, Start: tr.Start}
		return nil
	}
	if err := s.transact(ctx, key, txf); err != nil {
		return Finished{}, fmt.Errorf("finish %s of run %s: %w", step, runID, err)
	}
	return out, nil
}

// transact runs txf in a WATCH transaction on key, again while another
// writer changes the key at the same moment.
func (s *Runs) transact(ctx context.Context, key string, txf func(*redis.Tx) error) error {
	for attempt := 0; attempt < 50; attempt++ {
		err := s.rdb.Watch(ctx, txf, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // another step of this run finished at the same moment
		}
		return err
	}
	return errors.New("too much contention")
}

// Cancel ends a RUNNING run as CANCELLED (see workflow.Cancel): its running
// steps become CANCELLED with reason as their error, and its window is
// free at once. Changed is false when the run had already ended.
func (s *Runs) Cancel(ctx context.Context, wf *workflow.Workflow, runID, reason string) (Finished, error) {
	var out Finished
	key := runKey(runID)
	txf := func(tx *redis.Tx) error {
		run, err := readRun(ctx, tx, runID)
		if err != nil {
			return err
		}
		out = Finished{Run: run}
		if run.State != workflow.Running {
			return nil
		}
		tr := wf.Cancel(run.States())
		now := s.now().UTC()
		fields := []any{"state", string(tr.Run), "updated", now.Format(time.RFC3339Nano), "ended", now.Format(time.RFC3339Nano)}
		for name, st := range tr.States {
			rec := run.Steps[name]
			if rec.State == st {
				continue
			}
			if rec.State == workflow.Running {
				rec.Ended, rec.Error, rec.Progress = now, "cancelled: "+reason, ""
			}
			rec.State = st
			run.Steps[name] = rec
			b, _ := json.Marshal(rec)
			fields = append(fields, "step:"+name, string(b))
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, fields...)
			p.HDel(ctx, activeKey(wf.Name), runID)
			return nil
		})
		if err != nil {
			return err
		}
		run.State, run.Updated, run.Ended = tr.Run, now, now
		out = Finished{Run: run, Changed: true}
		return nil
	}
	if err := s.transact(ctx, key, txf); err != nil {
		return Finished{}, fmt.Errorf("cancel run %s: %w", runID, err)
	}
	return out, nil
}

// State reads a run's state alone: what a running task checks now and then
// (ErrNotFound when the run is gone).
func (s *Runs) State(ctx context.Context, id string) (workflow.StepState, error) {
	v, err := s.rdb.HGet(ctx, runKey(id), "state").Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get run %s: %w", id, err)
	}
	return workflow.StepState(v), nil
}

// SetProgress records a progress line for a running step. It is advisory:
// a lost update only delays what a person sees.
func (s *Runs) SetProgress(ctx context.Context, runID, step, progress string) error {
	key := runKey(runID)
	return s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		v, err := tx.HGet(ctx, key, "step:"+step).Result()
		if err != nil {
			return err
		}
		var rec StepRecord
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			return err
		}
		if rec.State != workflow.Running {
			return nil
		}
		rec.Progress = progress
		b, _ := json.Marshal(rec)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, "step:"+step, string(b))
			return nil
		})
		return err
	}, key)
}

// RunningSteps lists the crawler and job steps of a run that are RUNNING.
func (r Run) RunningSteps() []string {
	var out []string
	for name, rec := range r.Steps {
		if rec.State == workflow.Running {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// ClaimNotice claims the notification of a run's end: true for exactly one
// caller per run (several scheduler replicas watch the same runs).
func (s *Runs) ClaimNotice(ctx context.Context, runID string) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, notifiedKey(runID), s.now().UTC().Format(time.RFC3339), 7*24*time.Hour).Result()
	if err != nil {
		return false, fmt.Errorf("claim notice of run %s: %w", runID, err)
	}
	return ok, nil
}

// KEYS: 1 active runs hash. ARGV: 1 run id, 2 active ttl ms, 3 now ms, 4
// the run keys' prefix. Returns {ok, id1, start1, end1, id2, …}: ok 0 when
// the run holds no entry (ended, or older than the active ttl), else the
// other running runs' windows.
var claimTableScript = redis.NewScript(`
local mine = redis.call('HGET', KEYS[1], ARGV[1])
if not mine then return {0} end
if not string.find(mine, ' table$') then
  redis.call('HSET', KEYS[1], ARGV[1], mine .. ' table')
end
local out = {1}
local active = redis.call('HGETALL', KEYS[1])
for i = 1, #active, 2 do
  local id = active[i]
  if id ~= ARGV[1] then
    local s, e, created = string.match(active[i + 1], '^(%S+) (%S+) (%d+)')
    local state = redis.call('HGET', ARGV[4] .. id, 'state')
    if state == 'RUNNING' and tonumber(ARGV[3]) - tonumber(created) <= tonumber(ARGV[2]) then
      table.insert(out, id)
      table.insert(out, s)
      table.insert(out, e)
    end
  end
end
return out
`)

// ClaimTable marks run as holding wf's whole table until it ends: no other
// run of wf starts meanwhile (Start answers ErrOverlap). It returns the
// windows of wf's other running runs, by run id, read atomically with the
// claim: a run is either among them or refused. A schema conversion, which
// rewrites partitions outside its run's window, claims the table first.
func (s *Runs) ClaimTable(ctx context.Context, wf, run string) (map[string]civil.Window, error) {
	res, err := claimTableScript.Run(ctx, s.rdb, []string{activeKey(wf)}, run, s.ActiveTTL.Milliseconds(), s.now().UnixMilli(), runKey("")).Slice()
	if err != nil {
		return nil, fmt.Errorf("claim the table of %s for run %s: %w", wf, run, err)
	}
	if res[0].(int64) != 1 {
		return nil, fmt.Errorf("claim the table of %s for run %s: %w (it is not running, or is older than %s)", wf, run, ErrNotFound, s.ActiveTTL)
	}
	out := map[string]civil.Window{}
	for i := 1; i+2 < len(res); i += 3 {
		w, err := civil.ParseWindow(res[i+1].(string), res[i+2].(string))
		if err != nil {
			return nil, fmt.Errorf("claim the table of %s: run %s: %w", wf, res[i], err)
		}
		out[res[i].(string)] = w
	}
	return out, nil
}
