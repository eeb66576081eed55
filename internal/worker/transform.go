package worker

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"
	"gopkg.in/yaml.v3"

	"sluice/internal/config"
	"sluice/pipeline/barrier"
	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/fault"
	"sluice/pipeline/job"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// outputFormatVersion changes when a Sluice release changes what the job
// writes for the same input, so that bookmarks rebuild every partition.
// Version 2: several files per partition, named part-NNNNN-<build>.
const outputFormatVersion = "sluice-transform-2"

// jobStep resolves the job step a transform task belongs to. ok is false
// when the step is no longer RUNNING: the task has nothing to do.
func (w *Worker) jobStep(ctx context.Context, ref tasks.StepRef) (*job.Step, bool, error) {
	_, step, run, ok, err := w.activeStep(ctx, ref)
	if err != nil || !ok {
		return nil, false, err
	}
	spec, err := config.JobTransform(step.Job)
	if err != nil {
		return nil, false, fault.Permanent(fmt.Errorf("step %s: %w", step.Name, err))
	}
	s := &job.Step{
		RunID: ref.RunID, Name: step.Name, Spec: spec, Window: run.Window, Force: run.Force, AllowShrink: run.AllowShrink,
		Barrier:       redisBarrier{b: w.barrier, ref: ref},
		Progress:      func(ctx context.Context, line string) { _ = w.orch.Runs.SetProgress(ctx, ref.RunID, ref.Step, line) },
		Log:           w.log,
		MapOptions:    w.mapOpts,
		ReduceOptions: w.reduce,
	}
	if s.In, err = w.bucket(ctx, step.Job.Input); err != nil {
		return nil, false, err
	}
	if s.Out, err = w.bucket(ctx, step.Job.Output); err != nil {
		return nil, false, err
	}
	if s.Scratch, err = w.bucket(ctx, step.Job.Scratch); err != nil {
		return nil, false, err
	}
	specYAML, _ := yaml.Marshal(&step.Job.Transform)
	s.SpecID = bookmark.SpecHash(append(specYAML, []byte(step.Job.Input+"\n"+step.Job.Output)...), outputFormatVersion)
	s.Bookmarks = bookmark.NewStore(s.Out, step.Name)
	return s, true, nil
}

// redisBarrier names a job phase's barrier after its run and step.
type redisBarrier struct {
	b   *barrier.Barrier
	ref tasks.StepRef
}

func (r redisBarrier) Arrive(ctx context.Context, phase, member string, total int) (job.Arrival, error) {
	a, err := r.b.Arrive(ctx, "sluice:barrier:"+r.ref.String()+"/"+phase, member, total)
	return job.Arrival(a), err
}

func (w *Worker) handleTransformPlan(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Decode[tasks.TransformPlanPayload](t)
	if err != nil {
		return err
	}
	s, ok, err := w.jobStep(ctx, p.StepRef)
	if err != nil || !ok {
		return err
	}
	if w.fleet != nil {
		if s.PlanOptions.Slots, err = w.fleet(ctx); err != nil {
			w.log.Warn("could not count the fleet's transform slots; planning for the minimum", "err", err)
		}
	}
	next, err := s.Plan(ctx)
	if err != nil {
		return err
	}
	return w.follow(ctx, p.StepRef, s, next)
}

func (w *Worker) handleTransformMap(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Decode[tasks.TransformMapPayload](t)
	if err != nil {
		return err
	}
	s, ok, err := w.jobStep(ctx, p.StepRef)
	if err != nil || !ok {
		return err
	}
	next, err := s.Map(ctx, p.Shard, p.Shards)
	if err != nil {
		return fmt.Errorf("map shard %d: %w", p.Shard, err)
	}
	w.metrics.observeMap(*next.Mapped)
	return w.follow(ctx, p.StepRef, s, next)
}

func (w *Worker) handleTransformBucket(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Decode[tasks.TransformBucketPayload](t)
	if err != nil {
		return err
	}
	s, ok, err := w.jobStep(ctx, p.StepRef)
	if err != nil || !ok {
		return err
	}
	next, err := s.Bucket(ctx, p.Shards)
	if err != nil {
		return err
	}
	return w.follow(ctx, p.StepRef, s, next)
}

func (w *Worker) handleTransformReduce(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Decode[tasks.TransformReducePayload](t)
	if err != nil {
		return err
	}
	date, err := civil.Parse(p.Date)
	if err != nil {
		return fault.Permanent(err)
	}
	s, ok, err := w.jobStep(ctx, p.StepRef)
	if err != nil || !ok {
		return err
	}
	next, err := s.Reduce(ctx, date, p.Bucket, p.Buckets)
	if err != nil {
		return fmt.Errorf("reduce %s file %d: %w", p.Date, p.Bucket, err)
	}
	w.metrics.observeReduce(*next.Reduced)
	return w.follow(ctx, p.StepRef, s, next)
}

func (w *Worker) handleTransformCommit(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Decode[tasks.TransformCommitPayload](t)
	if err != nil {
		return err
	}
	date, err := civil.Parse(p.Date)
	if err != nil {
		return fault.Permanent(err)
	}
	s, ok, err := w.jobStep(ctx, p.StepRef)
	if err != nil || !ok {
		return err
	}
	next, err := s.Commit(ctx, date, p.Dates)
	if err != nil {
		return err
	}
	return w.follow(ctx, p.StepRef, s, next)
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
	var ts []*asynq.Task
	add := func(t *asynq.Task, err error) error {
		ts = append(ts, t)
		return err
	}
	for i := range next.Maps {
		if err := add(tasks.NewTransformMapTask(tasks.TransformMapPayload{StepRef: ref, Shard: i, Shards: next.Maps}, w.orch.Options)); err != nil {
			return err
		}
	}
	if next.Bucket {
		if err := add(tasks.NewTransformBucketTask(tasks.TransformBucketPayload{StepRef: ref, Shards: next.Shards}, w.orch.Options)); err != nil {
			return err
		}
	}
	for _, r := range next.Reduces {
		if err := add(tasks.NewTransformReduceTask(tasks.TransformReducePayload{StepRef: ref, Date: r.Date.String(), Bucket: r.Bucket, Buckets: r.Buckets}, w.orch.Options)); err != nil {
			return err
		}
	}
	for _, d := range next.Commits {
		if err := add(tasks.NewTransformCommitTask(tasks.TransformCommitPayload{StepRef: ref, Date: d.String(), Dates: next.CommitTotal}, w.orch.Options)); err != nil {
			return err
		}
	}
	for _, t := range ts {
		if _, err := tasks.Enqueue(ctx, w.orch.Client, t); err != nil {
			return err
		}
	}
	return nil
}
