// Package orchestrator turns run-state transitions into queued tasks. It is
// the one place that knows both the run store and the asynq client, and both
// the scheduler (starting runs) and the workers (finishing steps) go through
// it, so "a step finished, start what follows" is written once.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"sluice/internal/config"
	"sluice/internal/redisstore"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// Orchestrator starts runs and finishes steps. Create it with New; it owns
// its Redis and asynq connections until Close.
type Orchestrator struct {
	workflows map[string]*workflow.Workflow
	names     []string
	rdb       redis.UniversalClient
	runs      *redisstore.Runs
	timeline  *redisstore.Timeline
	barrier   *redisstore.Barrier
	client    *asynq.Client
	inspector *asynq.Inspector
	opts      tasks.Options
	log       *slog.Logger
	metrics   *Metrics
	open      func(ctx context.Context, location string) (storage.Bucket, error)
	// guardDays is, per workflow, the widest dedupe_horizon_days of its
	// jobs: how close to an active run's window another run may not start
	// (redisstore.StartOptions.GuardDays).
	guardDays map[string]int
	// windows and maxWindowDays are what CheckWindow holds windows to.
	windows       map[string]windowRules
	maxWindowDays int
	now           func() time.Time
}

// Config wires an Orchestrator.
type Config struct {
	Workflows map[string]*workflow.Workflow
	// Redis is where runs, barriers and asynq's queues live.
	Redis asynq.RedisConnOpt
	// Options are the asynq options of every task (tasks.DefaultOptions
	// when zero).
	Options tasks.Options
	Log     *slog.Logger
	// Open opens a storage location, for CleanScratch; nil: the scratch
	// is not swept.
	Open func(ctx context.Context, location string) (storage.Bucket, error)
	// MaxWindowDays is the most dates a run's window may hold (0:
	// config.DefaultMaxWindowDays); a schedule whose windows are wider is
	// refused by New. See CheckWindow.
	MaxWindowDays int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// HistoryOnly lets a reader of run history (scheduler runs, show)
	// work without workflows: it starts and finishes nothing.
	HistoryOnly bool
}

func (c *Config) validate() error {
	if len(c.Workflows) == 0 && !c.HistoryOnly {
		return errors.New("orchestrator: no workflows")
	}
	if c.Redis == nil {
		return errors.New("orchestrator: no Redis connection")
	}
	if c.Log == nil {
		return errors.New("orchestrator: no logger")
	}
	var names []string
	for name, wf := range c.Workflows {
		names = append(names, name)
		steps := make([]string, len(wf.Steps))
		for i, s := range wf.Steps {
			steps[i] = s.Name
		}
		if err := tasks.CheckIDs(steps); err != nil {
			return fmt.Errorf("workflow %s: steps: %w", name, err)
		}
	}
	if err := tasks.CheckIDs(names); err != nil {
		return fmt.Errorf("workflows: %w", err)
	}
	if c.Options == (tasks.Options{}) {
		c.Options = tasks.DefaultOptions
	}
	if c.MaxWindowDays == 0 {
		c.MaxWindowDays = config.DefaultMaxWindowDays
	}
	if c.MaxWindowDays < 1 || c.MaxWindowDays > config.MaxWindowDaysLimit {
		return fmt.Errorf("orchestrator: max window days must be from 1 to %d, got %d", config.MaxWindowDaysLimit, c.MaxWindowDays)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// barrierTTL bounds how long a job phase's barrier outlives its last
// arrival, so abandoned runs do not leak keys.
const barrierTTL = 7 * 24 * time.Hour

// New connects an Orchestrator (lazily: nothing is sent until it is used).
func New(cfg Config) (*Orchestrator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rdb, ok := cfg.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("orchestrator: unsupported Redis connection %T", cfg.Redis)
	}
	o := &Orchestrator{
		workflows: cfg.Workflows, rdb: rdb,
		runs: redisstore.NewRuns(rdb), timeline: redisstore.NewTimeline(rdb), barrier: redisstore.NewBarrier(rdb, barrierTTL),
		client: asynq.NewClient(cfg.Redis), inspector: asynq.NewInspector(cfg.Redis),
		opts: cfg.Options, log: cfg.Log, metrics: newMetrics(cfg.Workflows), open: cfg.Open,
		windows: map[string]windowRules{}, maxWindowDays: cfg.MaxWindowDays, now: cfg.Now,
	}
	o.guardDays = map[string]int{}
	for name, wf := range cfg.Workflows {
		o.names = append(o.names, name)
		rules, err := newWindowRules(wf)
		if err != nil {
			return nil, fmt.Errorf("orchestrator: workflow %s: %w", name, err)
		}
		o.windows[name] = rules
		if err := checkSchedules(wf, cfg.MaxWindowDays); err != nil {
			return nil, err
		}
		for i := range wf.Steps {
			if j := wf.Steps[i].Job; j != nil {
				spec, err := transform.FromJob(j)
				if err != nil {
					return nil, fmt.Errorf("orchestrator: workflow %s step %s: %w", name, wf.Steps[i].Name, err)
				}
				o.guardDays[name] = max(o.guardDays[name], spec.DedupeHorizonDays)
			}
		}
	}
	slices.Sort(o.names)
	return o, nil
}

// Close releases the connections.
func (o *Orchestrator) Close() error {
	return errors.Join(o.client.Close(), o.inspector.Close(), o.rdb.Close())
}

// ErrUnknownWorkflow is returned for a workflow name that none of the
// loaded files declares.
var ErrUnknownWorkflow = errors.New("unknown workflow")

// Workflow returns a loaded workflow by name.
func (o *Orchestrator) Workflow(name string) (*workflow.Workflow, error) {
	wf := o.workflows[name]
	if wf == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownWorkflow, name)
	}
	return wf, nil
}

// Workflows lists the loaded workflows' names, sorted.
func (o *Orchestrator) Workflows() []string { return o.names }

// Metrics are the step series this orchestrator records when it ends a
// step; a process that serves /metrics registers them.
func (o *Orchestrator) Metrics() *Metrics { return o.metrics }

// Options are the asynq options the orchestrator's tasks get.
func (o *Orchestrator) Options() tasks.Options { return o.opts }

// Run reads one run.
func (o *Orchestrator) Run(ctx context.Context, id string) (redisstore.Run, error) {
	return o.runs.Get(ctx, id)
}

// Runs lists a workflow's newest runs, newest first.
func (o *Orchestrator) Runs(ctx context.Context, workflow string, limit int) ([]redisstore.Run, error) {
	return o.runs.List(ctx, workflow, limit)
}

// HistoryWorkflows lists the workflows with run history in Redis, loaded
// or not.
func (o *Orchestrator) HistoryWorkflows(ctx context.Context) ([]string, error) {
	return o.runs.Workflows(ctx)
}

// RunState reads a run's state alone (redisstore.ErrNotFound when the run
// is gone).
func (o *Orchestrator) RunState(ctx context.Context, id string) (workflow.StepState, error) {
	return o.runs.State(ctx, id)
}

// ClaimNotice claims the notification of a run's end, once per run.
func (o *Orchestrator) ClaimNotice(ctx context.Context, runID string) (bool, error) {
	return o.runs.ClaimNotice(ctx, runID)
}

// ErrNotRunning is returned by Cancel for a run that has already ended.
var ErrNotRunning = errors.New("run is not running")

// Cancel ends a running run as CANCELLED (see redisstore.Runs.Cancel) and
// removes its tasks that wait in the queues (pending, scheduled, waiting
// for a retry); those running stop at their next check of the run (see the
// worker), and complete without doing more. Partitions
// already committed stay; nothing half-written is published, because only
// the commit publishes and it finishes what it started.
func (o *Orchestrator) Cancel(ctx context.Context, id, reason string) (redisstore.Run, error) {
	run, err := o.runs.Get(ctx, id)
	if err != nil {
		return run, err
	}
	wf, err := o.Workflow(run.Workflow)
	if err != nil {
		return run, err
	}
	fin, err := o.runs.Cancel(ctx, wf, id, reason)
	if err != nil {
		return fin.Run, err
	}
	if !fin.Changed {
		return fin.Run, fmt.Errorf("cancel run %s: %w: it is %s", id, ErrNotRunning, fin.Run.State)
	}
	for name, rec := range fin.Run.Steps {
		if s := wf.Step(name); rec.State == workflow.Cancelled && s != nil && s.Trigger == nil && !rec.Started.IsZero() {
			o.metrics.stepEnded(run.Workflow, name, workflow.Cancelled, rec.Ended.Sub(rec.Started).Seconds(), nil)
		}
	}
	removed, err := o.removeTasks(id)
	o.log.Info("run cancelled", "run", id, "workflow", run.Workflow, "window", run.Window.String(), "reason", reason, "tasks_removed", removed)
	return fin.Run, err
}

// removeTasks deletes a run's waiting tasks.
func (o *Orchestrator) removeTasks(runID string) (int, error) {
	removed := 0
	for _, queue := range []string{tasks.QueueCrawl, tasks.QueueTransform} {
		lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			o.inspector.ListPendingTasks, o.inspector.ListScheduledTasks, o.inspector.ListRetryTasks,
		}
		for _, list := range lists {
			// Collect first, then delete: deleting would shift the pages.
			var mine []*asynq.TaskInfo
			for page := 1; ; page++ {
				infos, err := list(queue, asynq.Page(page), asynq.PageSize(1000))
				if errors.Is(err, asynq.ErrQueueNotFound) {
					break
				}
				if err != nil {
					return removed, fmt.Errorf("list tasks of %s: %w", queue, err)
				}
				for _, ti := range infos {
					if tasks.OfRun(ti.ID, runID) {
						mine = append(mine, ti)
					}
				}
				if len(infos) < 1000 {
					break
				}
			}
			for _, ti := range mine {
				if err := o.inspector.DeleteTask(queue, ti.ID); err == nil {
					removed++
				}
			}
		}
	}
	return removed, nil
}

// SetProgress records a line about a running step's progress. It is
// advisory: a failure is logged at debug level, and only delays what a
// person sees.
func (o *Orchestrator) SetProgress(ctx context.Context, ref tasks.StepRef, line string) {
	if err := o.runs.SetProgress(ctx, ref.RunID, ref.Step, line); err != nil {
		o.log.Debug("progress not recorded", "run", ref.RunID, "step", ref.Step, "err", err)
	}
}

// ClaimTable keeps any other run of the workflow from starting until run
// ends, and returns the windows of those already running (see
// redisstore.Runs.ClaimTable): the partitions each of them rebuilds are
// its own until it ends.
func (o *Orchestrator) ClaimTable(ctx context.Context, workflow, run string) ([]civil.Window, error) {
	others, err := o.runs.ClaimTable(ctx, workflow, run)
	if err != nil {
		return nil, err
	}
	return slices.Collect(maps.Values(others)), nil
}

// Barrier is the fan-in barrier of a job step's phases.
func (o *Orchestrator) Barrier(ref tasks.StepRef) job.Barrier {
	return o.barrier.Step(ref.RunID, ref.Step)
}

// Enqueue puts tasks on their queues; a task whose id exists already is
// not enqueued again (see tasks.Enqueue).
func (o *Orchestrator) Enqueue(ctx context.Context, ts ...*asynq.Task) error {
	for _, t := range ts {
		if _, err := tasks.Enqueue(ctx, o.client, t); err != nil {
			return err
		}
	}
	return nil
}

// FleetSlots counts the concurrency of the live asynq servers that serve
// the transform queue: what the plan spreads map tasks over.
func (o *Orchestrator) FleetSlots(ctx context.Context) (int, error) {
	fleet, err := o.Fleet(ctx)
	return fleet[tasks.QueueTransform].Slots, err
}

// FleetQueue is what the live fleet gives one queue.
type FleetQueue struct {
	Workers int // live worker processes (asynq servers) serving the queue
	Slots   int // their concurrency summed
}

// Fleet tells, for each of Sluice's queues and any other a live server
// serves, how many worker processes serve it and with how many slots.
func (o *Orchestrator) Fleet(context.Context) (map[string]FleetQueue, error) {
	out := map[string]FleetQueue{tasks.QueueCrawl: {}, tasks.QueueTransform: {}}
	servers, err := o.inspector.Servers()
	if err != nil {
		return out, err
	}
	for _, s := range servers {
		if s.Status != "active" {
			continue
		}
		for q := range s.Queues {
			f := out[q]
			f.Workers++
			f.Slots += s.Concurrency
			out[q] = f
		}
	}
	return out, nil
}

// Start begins a run of a workflow over a window, unless one is active for
// the same window (then that run is returned with Created false).
func (o *Orchestrator) Start(ctx context.Context, name string, win civil.Window, opts redisstore.StartOptions) (redisstore.Started, error) {
	wf, err := o.Workflow(name)
	if err != nil {
		return redisstore.Started{}, err
	}
	if err := o.CheckWindow(name, win); err != nil {
		return redisstore.Started{}, fmt.Errorf("start run of %s: %w", name, err)
	}
	opts.GuardDays = o.guardDays[name]
	st, err := o.runs.Start(ctx, wf, win, opts)
	if err != nil {
		return st, err
	}
	if !st.Created {
		o.log.Info("run already active or already started for this tick", "workflow", name, "window", win.String(), "run", st.Run.ID)
		// Its creator may have died before enqueuing the first steps;
		// enqueuing again is a no-op when they exist.
		return st, o.Resume(ctx, st.Run)
	}
	o.log.Info("run started", "workflow", name, "window", win.String(), "run", st.Run.ID, "trigger", opts.Trigger, "steps", st.Start)
	return st, o.enqueueSteps(ctx, wf, st.Run.ID, st.Start)
}

// Finish records a step's result and enqueues the steps its triggers start.
// It is idempotent: finishing an already finished step re-enqueues (a no-op
// thanks to deterministic task ids) whatever the run has RUNNING, which heals
// a worker that died between recording the result and enqueuing.
func (o *Orchestrator) Finish(ctx context.Context, ref tasks.StepRef, result workflow.StepState, summary any, stepErr error) (redisstore.Finished, error) {
	wf, err := o.Workflow(ref.Workflow)
	if err != nil {
		return redisstore.Finished{}, err
	}
	fin, err := o.runs.Finish(ctx, wf, ref.RunID, ref.Step, result, summary, stepErr)
	if err != nil {
		return fin, err
	}
	if !fin.Changed {
		return fin, o.Resume(ctx, fin.Run)
	}
	o.log.Info("step finished", "run", ref.RunID, "step", ref.Step, "state", result, "run_state", fin.Run.State, "starts", fin.Start)
	if rec := fin.Run.Steps[ref.Step]; !rec.Started.IsZero() && !rec.Ended.IsZero() {
		o.metrics.stepEnded(ref.Workflow, ref.Step, result, rec.Ended.Sub(rec.Started).Seconds(), summary)
	}
	if result == workflow.Succeeded {
		o.recordPublished(ctx, ref.Workflow, ref.Step, ref.RunID, summary)
	}
	if fin.Run.State != workflow.Running {
		o.log.Info("run ended", "run", ref.RunID, "workflow", ref.Workflow, "state", fin.Run.State, "window", fin.Run.Window.String())
	}
	return fin, o.enqueueSteps(ctx, wf, ref.RunID, fin.Start)
}

func (o *Orchestrator) enqueueSteps(ctx context.Context, wf *workflow.Workflow, runID string, steps []string) error {
	var errs []error
	for _, name := range steps {
		step := wf.Step(name)
		t, err := tasks.ForStep(step.Kind(), tasks.StepRef{Workflow: wf.Name, RunID: runID, Step: name}, o.opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := tasks.Enqueue(ctx, o.client, t); err != nil {
			errs = append(errs, fmt.Errorf("step %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Resume enqueues the tasks of every step the run has RUNNING. Task ids are
// deterministic, so steps whose tasks exist are untouched; a step whose task
// was lost (its enqueuer died after recording the transition) gets it back.
func (o *Orchestrator) Resume(ctx context.Context, run redisstore.Run) error {
	wf, err := o.Workflow(run.Workflow)
	if err != nil {
		return err
	}
	if run.State != workflow.Running {
		return nil
	}
	return o.enqueueSteps(ctx, wf, run.ID, run.RunningSteps())
}

// RunsBefore lists up to n of a workflow's runs older than pos, newest
// first (see redisstore.Runs.ListBefore).
func (o *Orchestrator) RunsBefore(ctx context.Context, workflow string, pos redisstore.Position, n int) ([]redisstore.Run, bool, error) {
	return o.runs.ListBefore(ctx, workflow, pos, n)
}

// Sessions is the console's session store, in the same Redis.
func (o *Orchestrator) Sessions() *redisstore.Sessions { return redisstore.NewSessions(o.rdb) }

// Timeline is the runs' task timeline and task logs, in the same Redis.
func (o *Orchestrator) Timeline() *redisstore.Timeline { return o.timeline }

// PauseSchedule pauses a workflow's schedules (see
// redisstore.Runs.PauseSchedule).
func (o *Orchestrator) PauseSchedule(ctx context.Context, name, by, reason string) (redisstore.Pause, error) {
	if _, err := o.Workflow(name); err != nil {
		return redisstore.Pause{}, err
	}
	p, err := o.runs.PauseSchedule(ctx, name, by, reason)
	if err == nil {
		o.log.Info("schedule paused", "workflow", name, "by", by, "reason", reason)
	}
	return p, err
}

// ResumeSchedule lets a workflow's schedules start runs again.
func (o *Orchestrator) ResumeSchedule(ctx context.Context, name, by string) error {
	if _, err := o.Workflow(name); err != nil {
		return err
	}
	err := o.runs.ResumeSchedule(ctx, name)
	if err == nil {
		o.log.Info("schedule resumed", "workflow", name, "by", by)
	}
	return err
}

// SchedulePaused tells whether a workflow's schedules are paused.
func (o *Orchestrator) SchedulePaused(ctx context.Context, name string) (redisstore.Pause, bool, error) {
	return o.runs.SchedulePaused(ctx, name)
}
