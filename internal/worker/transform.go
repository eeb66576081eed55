package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"sluice/internal/redisstore"
	"sluice/pipeline/civil"
	"sluice/pipeline/fault"
	"sluice/pipeline/icetable"
	"sluice/pipeline/job"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// jobStep resolves the job step a transform task belongs to. ok is false
// when the step is no longer RUNNING: the task has nothing to do.
func (w *Worker) jobStep(ctx context.Context, ref tasks.StepRef) (*job.Step, bool, error) {
	_, step, run, ok, err := w.activeStep(ctx, ref)
	if err != nil || !ok {
		return nil, false, err
	}
	s, err := w.jobs().NewStep(ctx, w.logFor(ctx), ref.RunID, step, run.Window, run.Force, run.AllowShrink) // a task's lines go to its log in the timeline too
	if err != nil {
		return nil, false, err
	}
	s.Barrier = w.orch.Barrier(ref)
	s.Progress = func(ctx context.Context, line string) { w.orch.SetProgress(ctx, ref, line) }
	s.ClaimTable = func(ctx context.Context) ([]civil.Window, error) {
		return w.orch.ClaimTable(ctx, ref.Workflow, ref.RunID)
	}
	return s, true, nil
}

// jobs builds the job steps of this worker's tasks: its buckets, opened
// once, and its options.
func (w *Worker) jobs() job.Builder {
	return job.Builder{Open: w.bucket, TableIO: icetable.IOProperties(w.s3), MapOptions: w.mapOpts, ReduceOptions: w.reduce, PlanOptions: job.PlanOptions{MinTasks: w.minTask}}
}

// DryRun asks the planner of every job step of a workflow what a run over
// win would rebuild and read (job.Planner), with this worker's buckets
// and options.
func (w *Worker) DryRun(ctx context.Context, workflowName string, win civil.Window, force bool) ([]job.StepDryRun, error) {
	p := &job.Planner{Workflow: w.orch.Workflow, Slots: w.orch.FleetSlots, Builder: w.jobs(), Log: w.log}
	return p.DryRun(ctx, workflowName, win, force)
}

// jobHandler adapts a job phase to an asynq handler: decode the payload,
// resolve the step (nothing to do once it is no longer RUNNING), run the
// phase, then enqueue what it made ready or end the step.
func jobHandler[P interface{ Ref() tasks.StepRef }](w *Worker, phase func(context.Context, *job.Step, P) (job.Next, error)) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		p, err := tasks.Decode[P](t)
		if err != nil {
			return err
		}
		s, ok, err := w.jobStep(ctx, p.Ref())
		if err != nil || !ok {
			return err
		}
		next, err := phase(ctx, s, p)
		if err != nil {
			return err
		}
		return w.follow(ctx, p.Ref(), s, next)
	}
}

func (w *Worker) planPhase(ctx context.Context, s *job.Step, _ tasks.TransformPlanPayload) (job.Next, error) {
	slots, err := w.orch.FleetSlots(ctx)
	if err != nil {
		w.log.Warn("could not count the fleet's transform slots; planning for the minimum", "err", err)
	}
	s.PlanOptions.Slots = slots
	return s.Plan(ctx)
}

func mapPhase(ctx context.Context, s *job.Step, p tasks.TransformMapPayload) (job.Next, error) {
	next, err := s.Map(ctx, p.Shard, p.Shards)
	if err != nil {
		return next, fmt.Errorf("map shard %d: %w", p.Shard, err)
	}
	return next, nil
}

func splitPhase(ctx context.Context, s *job.Step, p tasks.TransformSplitPayload) (job.Next, error) {
	return s.Split(ctx, p.Shards)
}

func reducePhase(ctx context.Context, s *job.Step, p tasks.TransformReducePayload) (job.Next, error) {
	date, err := civil.Parse(p.Date)
	if err != nil {
		return job.Next{}, fault.Permanent(err)
	}
	next, err := s.Reduce(ctx, date, p.Slice)
	if err != nil {
		return next, fmt.Errorf("reduce %s slice %d: %w", p.Date, p.Slice, err)
	}
	return next, nil
}

func encodePhase(ctx context.Context, s *job.Step, p tasks.TransformEncodePayload) (job.Next, error) {
	date, err := civil.Parse(p.Date)
	if err != nil {
		return job.Next{}, fault.Permanent(err)
	}
	next, err := s.Encode(ctx, date, p.Fragment, p.Fragments)
	if err != nil {
		return next, fmt.Errorf("encode %s fragment %d: %w", p.Date, p.Fragment, err)
	}
	return next, nil
}

func commitPhase(ctx context.Context, s *job.Step, p tasks.TransformCommitPayload) (job.Next, error) {
	date, err := civil.Parse(p.Date)
	if err != nil {
		return job.Next{}, fault.Permanent(err)
	}
	return s.Commit(ctx, date, p.Dates)
}

// follow enqueues the work a phase made ready, or ends the step.
func (w *Worker) follow(ctx context.Context, ref tasks.StepRef, s *job.Step, next job.Next) error {
	if next.Done != nil {
		if _, err := w.orch.Finish(ctx, ref, workflow.Succeeded, next.Done, nil); err != nil {
			return err
		}
		if err := s.Cleanup(ctx); err != nil {
			w.log.Warn("scratch cleanup failed; the files are harmless and can be deleted", "run", ref.RunID, "step", ref.Step, "err", err)
		}
		return nil
	}
	// A run cancelled (or failed) meanwhile gets nothing more; one gone
	// from Redis stops here too.
	state, err := w.orch.RunState(ctx, ref.RunID)
	switch {
	case errors.Is(err, redisstore.ErrNotFound):
		return w.runGone(ref)
	case err == nil && state != workflow.Running:
		w.log.Info("run has ended; not enqueuing what follows", "run", ref.RunID, "step", ref.Step, "run_state", state)
		return nil
	}
	opts := w.orch.Options()
	var ts []*asynq.Task
	add := func(t *asynq.Task, err error) error {
		ts = append(ts, t)
		return err
	}
	for i := range next.Maps {
		if err := add(tasks.NewTransformMapTask(tasks.TransformMapPayload{StepRef: ref, Shard: i, Shards: next.Maps}, opts)); err != nil {
			return err
		}
	}
	if next.Split {
		if err := add(tasks.NewTransformSplitTask(tasks.TransformSplitPayload{StepRef: ref, Shards: next.Shards}, opts)); err != nil {
			return err
		}
	}
	for _, r := range next.Reduces {
		if err := add(tasks.NewTransformReduceTask(tasks.TransformReducePayload{StepRef: ref, Date: r.Date.String(), Slice: r.Slice}, opts)); err != nil {
			return err
		}
	}
	for _, e := range next.Encodes {
		if err := add(tasks.NewTransformEncodeTask(tasks.TransformEncodePayload{StepRef: ref, Date: e.Date.String(), Fragment: e.Fragment, Fragments: e.Fragments}, opts)); err != nil {
			return err
		}
	}
	for _, d := range next.Commits {
		if err := add(tasks.NewTransformCommitTask(tasks.TransformCommitPayload{StepRef: ref, Date: d.String(), Dates: next.CommitTotal}, opts)); err != nil {
			return err
		}
	}
	return w.orch.Enqueue(ctx, ts...)
}
