// Package scheduler fires the SCHEDULED triggers of the loaded workflows
// and serves the scheduler's HTTP endpoints (asynqmon UI, metrics, runs).
//
// Several schedulers may run side by side for availability: each computes
// the same fire times from the cron expression, and the run store's dedupe
// key for (workflow, trigger, fire time) lets exactly one of them start the
// run.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/pipeline/workflow"
)

// Scheduler fires schedule triggers and sweeps asynq's archive, each in a
// loop of its own between Start and Stop.
type Scheduler struct {
	orch       *orchestrator.Orchestrator
	log        *slog.Logger
	now        func() time.Time
	sweepEvery time.Duration
	scratch    orchestrator.ScratchOptions
	leftovers  time.Duration
	notifier   Notifier

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Config wires a Scheduler.
type Config struct {
	Orchestrator *orchestrator.Orchestrator
	Log          *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SweepEvery is how often the archive is swept for tasks that used up
	// their retries unseen (default 30 s; see orchestrator.FailArchived).
	SweepEvery time.Duration
	// Scratch says which ended runs keep their scratch.
	Scratch orchestrator.ScratchOptions
	// LeftoverAge is how old the temporary files of interrupted writes in
	// the jobs' folders must be before the sweep removes them (default
	// DefaultLeftoverAge); they are looked for every LeftoverAge/2.
	LeftoverAge time.Duration
	// Notifier, when set, runs beside the loops (notify.Notifier: webhooks
	// on run end).
	Notifier Notifier
}

// Notifier is a loop that runs until its context ends.
type Notifier interface{ Run(ctx context.Context) }

// New returns a scheduler; Start runs it.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Orchestrator == nil || cfg.Log == nil {
		return nil, errors.New("scheduler: Orchestrator and Log are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = 30 * time.Second
	}
	if cfg.LeftoverAge <= 0 {
		cfg.LeftoverAge = DefaultLeftoverAge
	}
	return &Scheduler{orch: cfg.Orchestrator, log: cfg.Log, now: cfg.Now, sweepEvery: cfg.SweepEvery,
		scratch: cfg.Scratch, leftovers: cfg.LeftoverAge, notifier: cfg.Notifier}, nil
}

// DefaultLeftoverAge is far longer than any single write takes (a write
// touches its file as it goes), so no write under way is mistaken for a
// leftover.
const DefaultLeftoverAge = time.Hour

// Start starts one loop per SCHEDULED trigger of the loaded workflows and
// the archive sweep, and returns. They run until Stop (or until ctx ends).
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("scheduler: already started")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { s.sweep(ctx) })
	wg.Go(func() { s.sweepLeftovers(ctx) })
	if s.notifier != nil {
		wg.Go(func() { s.notifier.Run(ctx) })
	}
	for _, name := range s.orch.Workflows() {
		wf, _ := s.orch.Workflow(name)
		for _, trig := range wf.StartTriggers() {
			if trig.Trigger.Type == workflow.TriggerScheduled {
				wg.Go(func() { s.loop(ctx, wf, trig) })
			}
		}
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	return nil
}

// Stop ends the loops and waits for them; a scheduled start already under
// way finishes first. It is safe to call more than once.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (s *Scheduler) sweep(ctx context.Context) {
	tick := time.NewTicker(s.sweepEvery)
	defer tick.Stop()
	for {
		// Tasks are retained 48 h; an archived task older than a week has
		// long been handled.
		if n, err := s.orch.FailArchived(ctx, 7*24*time.Hour); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep of archived tasks failed", "err", err)
		} else if n > 0 {
			s.log.Info("failed steps whose tasks were archived", "steps", n)
		}
		if counts, ids, err := s.orch.OrphanedTasks(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("listing orphaned tasks failed", "err", err)
		} else if n := total(counts); n > 0 {
			s.log.Warn("tasks whose worker died wait for asynq's recoverer (30 to 90 s after their lease lapsed)", "tasks", n, "ids", ids)
		}
		if n, err := s.orch.CleanScratch(ctx, s.scratch); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep of scratch failed", "err", err)
		} else if n > 0 {
			s.log.Info("cleaned the scratch of runs that will not use it again", "runs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Scheduler) loop(ctx context.Context, wf *workflow.Workflow, trig *workflow.StepSpec) {
	sched := trig.Trigger.Schedule
	for {
		fire := sched.Next(s.now())
		s.log.Info("next scheduled run", "workflow", wf.Name, "trigger", trig.Name, "at", fire.UTC().Format(time.RFC3339), "window", sched.WindowFor(fire).String())
		timer := time.NewTimer(fire.Sub(s.now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		s.Fire(ctx, wf, trig, fire)
	}
}

// Fire starts the run a schedule trigger asks for at fire time, unless
// the workflow's schedule is paused (the fire is skipped, not made up
// later). Every scheduler replica may call it for the same fire; one run
// results.
func (s *Scheduler) Fire(ctx context.Context, wf *workflow.Workflow, trig *workflow.StepSpec, fire time.Time) {
	win := trig.Trigger.Schedule.WindowFor(fire)
	if p, paused, err := s.orch.SchedulePaused(ctx, wf.Name); err != nil {
		s.log.Warn("could not read whether the schedule is paused; firing", "workflow", wf.Name, "err", err)
	} else if paused {
		s.log.Info("scheduled run skipped: the workflow's schedule is paused", "workflow", wf.Name, "trigger", trig.Name, "window", win.String(),
			"paused_by", p.By, "paused_at", p.At.Format(time.RFC3339), "reason", p.Reason)
		return
	}
	_, err := s.orch.Start(ctx, wf.Name, win, redisstore.StartOptions{
		Trigger: trig.Name,
		Dedupe:  redisstore.DedupeKey(wf.Name, trig.Name, fire),
	})
	if err != nil {
		s.log.Error("scheduled run did not start", "workflow", wf.Name, "trigger", trig.Name, "window", win.String(), "err", err)
	}
}

// sweepLeftovers removes the temporary files of interrupted writes, which
// only the folder storage has, less often than the sweep: it walks every
// folder of the jobs' outputs.
func (s *Scheduler) sweepLeftovers(ctx context.Context) {
	tick := time.NewTicker(s.leftovers / 2)
	defer tick.Stop()
	for {
		if _, _, err := s.orch.RemoveLeftovers(ctx, s.leftovers); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep of leftover temporary files failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}
