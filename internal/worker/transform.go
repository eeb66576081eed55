package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"gopkg.in/yaml.v3"

	"sluice/internal/config"
	"sluice/internal/redisstore"
	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/fault"
	"sluice/pipeline/job"
	"sluice/pipeline/storage"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// outputFormatVersion changes when a Sluice release changes what the job
// writes for the same input, so that bookmarks rebuild every partition.
// Version 2: several files per partition, named part-NNNNN-<build>.
// Version 3: files assembled from fragments (row groups of about 64 MiB,
// Sluice's own column-chunk writer, rows by instant then key
// fingerprint).
const outputFormatVersion = "sluice-transform-3"

// jobStep resolves the job step a transform task belongs to. ok is false
// when the step is no longer RUNNING: the task has nothing to do.
func (w *Worker) jobStep(ctx context.Context, ref tasks.StepRef) (*job.Step, bool, error) {
	_, step, run, ok, err := w.activeStep(ctx, ref)
	if err != nil || !ok {
		return nil, false, err
	}
	s, err := w.newJobStep(ctx, ref.RunID, step, run.Window, run.Force, run.AllowShrink)
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

// newJobStep builds a job step's phases over its buckets and bookmarks:
// what a run's tasks use, and what a dry run asks.
func (w *Worker) newJobStep(ctx context.Context, runID string, step *workflow.Step, win civil.Window, force, allowShrink bool) (*job.Step, error) {
	spec, err := config.JobTransform(step.Job)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("step %s: %w", step.Name, err))
	}
	s := &job.Step{
		RunID: runID, Name: step.Name, Spec: spec, Window: win, Force: force, AllowShrink: allowShrink,
		Log:           w.logFor(ctx), // a task's lines go to its log in the timeline too
		MapOptions:    w.mapOpts,
		ReduceOptions: w.reduce,
		PlanOptions:   job.PlanOptions{MinTasks: w.minTask},
	}
	if s.In, err = w.bucket(ctx, step.Job.Input); err != nil {
		return nil, err
	}
	if s.Out, err = w.bucket(ctx, step.Job.Output); err != nil {
		return nil, err
	}
	if s.Scratch, err = w.bucket(ctx, step.Job.Scratch); err != nil {
		return nil, err
	}
	if s.Table, err = w.icebergTable(step, s.Out); err != nil {
		return nil, err
	}
	s.SpecID = jobSpecID(step.Job)
	s.Bookmarks = bookmark.NewStore(s.Out, step.Name)
	return s, nil
}

// jobSpecID identifies a job's configuration for its bookmarks: its
// transform block and its locations, each spelled one way, so that
// ./sluice-demo/raw and file:///abs/sluice-demo/raw are the same job.
func jobSpecID(job *workflow.JobSpec) string {
	specYAML, _ := yaml.Marshal(&job.Transform)
	locs := storage.CanonicalLocation(job.Input) + "\n" + storage.CanonicalLocation(job.Output)
	return bookmark.SpecHash(append(specYAML, locs...), outputFormatVersion)
}

// StepDryRun is a dry run of one job step.
type StepDryRun struct {
	Step string `json:"step"`
	job.DryRun
}

// DryRun asks the planner of every job step of a workflow what a run over
// win would rebuild and read (see job.Step.DryRun), for the live fleet.
// Nothing is written and no run starts.
func (w *Worker) DryRun(ctx context.Context, workflowName string, win civil.Window, force bool) ([]StepDryRun, error) {
	wf, err := w.orch.Workflow(workflowName)
	if err != nil {
		return nil, err
	}
	slots, err := w.orch.FleetSlots(ctx)
	if err != nil {
		w.log.Warn("could not count the fleet's transform slots; planning for the minimum", "err", err)
	}
	var out []StepDryRun
	for i := range wf.Steps {
		step := &wf.Steps[i]
		if step.Job == nil {
			continue
		}
		s, err := w.newJobStep(ctx, "dry-run", step, win, force, false)
		if err != nil {
			return nil, err
		}
		s.PlanOptions.Slots = slots
		dr, err := s.DryRun(ctx)
		if err != nil {
			return nil, fmt.Errorf("dry run of %s: %w", step.Name, err)
		}
		out = append(out, StepDryRun{Step: step.Name, DryRun: dr})
	}
	return out, nil
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

func bucketPhase(ctx context.Context, s *job.Step, p tasks.TransformBucketPayload) (job.Next, error) {
	return s.Bucket(ctx, p.Shards)
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
	if next.Bucket {
		if err := add(tasks.NewTransformBucketTask(tasks.TransformBucketPayload{StepRef: ref, Shards: next.Shards}, opts)); err != nil {
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
