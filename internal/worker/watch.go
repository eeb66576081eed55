package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/redisstore"
	"sluice/pipeline/fault"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// errRunEnded stops a task whose run ended while it ran (cancelled, or
// failed by another task): its work is no longer wanted.
var errRunEnded = errors.New("the run has ended")

// interruptible are the task types that only write to scratch or staging,
// so stopping one half-way publishes nothing. Crawls and commits, which
// publish, finish what they started (both are short); a task of an ended
// run that starts later does nothing (activeStep).
var interruptible = map[string]bool{
	tasks.TypeTransformPlan: true, tasks.TypeTransformMap: true,
	tasks.TypeTransformSplit: true, tasks.TypeTransformReduce: true, tasks.TypeTransformEncode: true,
}

// watchRun checks the run of a running task every runCheck, and stops the
// task (cancelling its context) when the run is no longer RUNNING or is
// gone from Redis. A task of an ended run then completes without doing
// anything more; one whose run is gone fails without retries.
func (w *Worker) watchRun(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if !interruptible[t.Type()] {
			return next.ProcessTask(ctx, t)
		}
		ref, err := tasks.Decode[tasks.StepRef](t)
		if err != nil || ref.RunID == "" {
			return next.ProcessTask(ctx, t)
		}
		tctx, stop := context.WithCancelCause(ctx)
		defer stop(nil)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { w.checkRun(tctx, ref, stop, done) })
		err = next.ProcessTask(tctx, t)
		close(done)
		wg.Wait()
		cause := context.Cause(tctx)
		switch {
		case errors.Is(cause, redisstore.ErrNotFound):
			return w.runGone(ref)
		case errors.Is(cause, errRunEnded):
			w.logFor(ctx).Info("task stopped: its run has ended", "run", ref.RunID, "step", ref.Step, "type", t.Type(), "cause", cause)
			markStopped(ctx)
			return nil
		}
		return err
	})
}

// checkRun reads the run's state every runCheck until done, and cancels
// the task when the run has ended or is gone. A failed read (Redis
// unreachable for a moment) is no reason to stop.
func (w *Worker) checkRun(ctx context.Context, ref tasks.StepRef, stop context.CancelCauseFunc, done <-chan struct{}) {
	tick := time.NewTicker(w.runCheck)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		state, err := w.orch.RunState(ctx, ref.RunID)
		switch {
		case errors.Is(err, redisstore.ErrNotFound):
			stop(err)
			return
		case err != nil:
			w.log.Debug("could not check the run", "run", ref.RunID, "err", err)
		case state != workflow.Running:
			stop(fmt.Errorf("%w: %s", errRunEnded, state))
			return
		}
	}
}

// runGone says, once per task, that the task's run has no record in Redis,
// and returns the permanent error that stops the task without retries.
func (w *Worker) runGone(ref tasks.StepRef) error {
	w.log.Error("run is gone from Redis: stopping its task. Redis lost the run's records (restarted without persistence, or flushed); start the window again and the bookmarks decide what to rebuild",
		"run", ref.RunID, "step", ref.Step)
	return fault.Permanent(fmt.Errorf("run %s: %w (Redis lost its records; start the window again)", ref.RunID, redisstore.ErrNotFound))
}
