package job

import (
	"context"
	"fmt"
	"log/slog"

	"gopkg.in/yaml.v3"

	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/fault"
	"sluice/pipeline/format/formats"
	"sluice/pipeline/icetable"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
)

// Builder makes the Step of a workflow's job step for a run: what a
// worker's tasks use, and what a dry run asks. It is the one place that
// turns a workflow's job block into a Step, so that the worker, the API
// and the CLI agree on it.
type Builder struct {
	// Open opens a bucket by its location (storeurl.Open with the
	// process's S3 settings; a worker caches what it opens).
	Open func(ctx context.Context, location string) (storage.Bucket, error)
	// TableIO are the S3 settings an Iceberg table's own file IO needs
	// (icetable.IOProperties); nil for tables on folders.
	TableIO       map[string]string
	MapOptions    mapper.Options
	ReduceOptions reduce.Options
	PlanOptions   PlanOptions
}

// NewStep builds the job step step of run runID over win, logging to log.
// A transform block that does not decode or validate is a permanent error.
func (b Builder) NewStep(ctx context.Context, log *slog.Logger, runID string, step *workflow.StepSpec, win civil.Window, force, allowShrink bool) (*Step, error) {
	spec, err := transform.FromJob(step.Job)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("step %s: %w", step.Name, err))
	}
	s := &Step{
		RunID: runID, Name: step.Name, Spec: spec, Window: win, Force: force, AllowShrink: allowShrink,
		Log:           log,
		MapOptions:    b.MapOptions,
		ReduceOptions: b.ReduceOptions,
		PlanOptions:   b.PlanOptions,
	}
	if s.In, err = b.Open(ctx, step.Job.Input); err != nil {
		return nil, err
	}
	if s.Out, err = b.Open(ctx, step.Job.Output); err != nil {
		return nil, err
	}
	if s.Scratch, err = b.Open(ctx, step.Job.Scratch); err != nil {
		return nil, err
	}
	if step.Job.Iceberg() {
		if s.Table, err = icetable.Open(icetable.ConfigOf(step.Job.Table), s.Out, b.TableIO); err != nil {
			return nil, fault.Permanent(fmt.Errorf("step %s: %w", step.Name, err))
		}
	}
	s.SpecID = SpecID(step.Job)
	s.Bookmarks = bookmark.NewStore(s.Out, step.Name)
	return s, nil
}

// SpecID identifies a job's configuration for its bookmarks: its
// transform block and its locations, each spelled one way, so that
// ./sluice-demo/raw and file:///abs/sluice-demo/raw are the same job, and
// the version of what the job writes (formats.OutputVersion).
func SpecID(job *workflow.JobSpec) string {
	specYAML, _ := yaml.Marshal(&job.Transform)
	locs := storage.CanonicalLocation(job.Input) + "\n" + storage.CanonicalLocation(job.Output)
	return bookmark.SpecHash(append(specYAML, locs...), formats.OutputVersion)
}

// StepDryRun is a dry run of one job step.
type StepDryRun struct {
	Step string `json:"step"`
	DryRun
}

// Planner answers dry runs of a workflow's job steps (the API's planner).
type Planner struct {
	// Workflow finds a workflow by name.
	Workflow func(name string) (*workflow.Workflow, error)
	// Slots counts the fleet's transform slots, which the planner cuts
	// work for; nil or an error plans for the minimum.
	Slots   func(ctx context.Context) (int, error)
	Builder Builder
	Log     *slog.Logger // the steps' logger; nil: slog.Default()
}

// DryRun asks the planner of every job step of a workflow what a run over
// win would rebuild and read (see Step.DryRun), for the live fleet.
// Nothing is written and no run starts.
func (p *Planner) DryRun(ctx context.Context, workflowName string, win civil.Window, force bool) ([]StepDryRun, error) {
	wf, err := p.Workflow(workflowName)
	if err != nil {
		return nil, err
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	var slots int
	if p.Slots != nil {
		if slots, err = p.Slots(ctx); err != nil {
			log.Warn("could not count the fleet's transform slots; planning for the minimum", "err", err)
		}
	}
	var out []StepDryRun
	for i := range wf.Steps {
		step := &wf.Steps[i]
		if step.Job == nil {
			continue
		}
		s, err := p.Builder.NewStep(ctx, log, "dry-run", step, win, force, false)
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
