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
	"log/slog"
	"sort"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/errgroup"

	"sluice/internal/orchestrator"
	"sluice/pipeline/runstore"
	"sluice/pipeline/workflow"
)

// Scheduler fires schedule triggers.
type Scheduler struct {
	Orch *orchestrator.Orchestrator
	Log  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Inspector, when set, lets the scheduler find tasks that used up their
	// retries unseen by a worker (killed on the last attempt).
	Inspector *asynq.Inspector
	// SweepEvery is how often to look (default 30 s).
	SweepEvery time.Duration
}

func (s *Scheduler) sweep(ctx context.Context) {
	every := s.SweepEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		// Tasks are retained 48 h; an archived task older than a week has
		// long been handled.
		if n, err := s.Orch.FailArchived(ctx, s.Inspector, 7*24*time.Hour); err != nil && ctx.Err() == nil {
			s.Log.Warn("sweep of archived tasks failed", "err", err)
		} else if n > 0 {
			s.Log.Info("failed steps whose tasks were archived", "steps", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run fires every schedule trigger until ctx ends, and every SweepEvery
// fails the steps whose tasks asynq archived (see
// orchestrator.FailArchived).
func (s *Scheduler) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if s.Inspector != nil {
		g.Go(func() error { s.sweep(ctx); return nil })
	}
	names := make([]string, 0, len(s.Orch.Workflows))
	for name := range s.Orch.Workflows {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		wf := s.Orch.Workflows[name]
		for _, trig := range wf.StartTriggers() {
			if trig.Trigger.Type != workflow.TriggerScheduled {
				continue
			}
			g.Go(func() error { s.loop(ctx, wf, trig); return nil })
		}
	}
	return g.Wait()
}

func (s *Scheduler) loop(ctx context.Context, wf *workflow.Workflow, trig *workflow.Step) {
	sched := trig.Trigger.Schedule
	for {
		fire := sched.Next(s.now())
		s.Log.Info("next scheduled run", "workflow", wf.Name, "trigger", trig.Name, "at", fire.UTC().Format(time.RFC3339), "window", sched.WindowFor(fire).String())
		timer := time.NewTimer(time.Until(fire))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		s.Fire(ctx, wf, trig, fire)
	}
}

// Fire starts the run a schedule trigger asks for at fire time. Every
// scheduler replica may call it for the same fire; one run results.
func (s *Scheduler) Fire(ctx context.Context, wf *workflow.Workflow, trig *workflow.Step, fire time.Time) {
	win := trig.Trigger.Schedule.WindowFor(fire)
	_, err := s.Orch.Start(ctx, wf.Name, win, runstore.StartOptions{
		Trigger: trig.Name,
		Dedupe:  runstore.DedupeKey(wf.Name, trig.Name, fire),
	})
	if err != nil {
		s.Log.Error("scheduled run did not start", "workflow", wf.Name, "trigger", trig.Name, "window", win.String(), "err", err)
	}
}
