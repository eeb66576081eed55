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

	"github.com/hibiken/asynq"

	"sluice/pipeline/civil"
	"sluice/pipeline/runstore"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// Orchestrator starts runs and finishes steps.
type Orchestrator struct {
	Workflows map[string]*workflow.Workflow
	Runs      *runstore.Store
	Client    *asynq.Client
	Options   tasks.Options
	Log       *slog.Logger
}

// Workflow returns a loaded workflow by name.
func (o *Orchestrator) Workflow(name string) (*workflow.Workflow, error) {
	wf := o.Workflows[name]
	if wf == nil {
		return nil, fmt.Errorf("unknown workflow %q", name)
	}
	return wf, nil
}

// Start begins a run of a workflow over a window, unless one is active for
// the same window (then that run is returned with Created false).
func (o *Orchestrator) Start(ctx context.Context, name string, win civil.Window, opts runstore.StartOptions) (runstore.Started, error) {
	wf, err := o.Workflow(name)
	if err != nil {
		return runstore.Started{}, err
	}
	st, err := o.Runs.Start(ctx, wf, win, opts)
	if err != nil {
		return st, err
	}
	if !st.Created {
		o.Log.Info("run already active or already started for this tick", "workflow", name, "window", win.String(), "run", st.Run.ID)
		// Its creator may have died before enqueuing the first steps;
		// enqueuing again is a no-op when they exist.
		return st, o.Resume(ctx, st.Run)
	}
	o.Log.Info("run started", "workflow", name, "window", win.String(), "run", st.Run.ID, "trigger", opts.Trigger, "steps", st.Start)
	return st, o.enqueueSteps(ctx, wf, st.Run.ID, st.Start)
}

// Finish records a step's result and enqueues the steps its triggers start.
// It is idempotent: finishing an already finished step re-enqueues (a no-op
// thanks to deterministic task ids) whatever the run has RUNNING, which heals
// a worker that died between recording the result and enqueuing.
func (o *Orchestrator) Finish(ctx context.Context, ref tasks.StepRef, result workflow.StepState, summary any, stepErr error) (runstore.Finished, error) {
	wf, err := o.Workflow(ref.Workflow)
	if err != nil {
		return runstore.Finished{}, err
	}
	fin, err := o.Runs.Finish(ctx, wf, ref.RunID, ref.Step, result, summary, stepErr)
	if err != nil {
		return fin, err
	}
	if !fin.Changed {
		return fin, o.Resume(ctx, fin.Run)
	}
	o.Log.Info("step finished", "run", ref.RunID, "step", ref.Step, "state", result, "run_state", fin.Run.State, "starts", fin.Start)
	if fin.Run.State != workflow.Running {
		o.Log.Info("run ended", "run", ref.RunID, "workflow", ref.Workflow, "state", fin.Run.State, "window", fin.Run.Window.String())
	}
	return fin, o.enqueueSteps(ctx, wf, ref.RunID, fin.Start)
}

func (o *Orchestrator) enqueueSteps(ctx context.Context, wf *workflow.Workflow, runID string, steps []string) error {
	var errs []error
	for _, name := range steps {
		step := wf.Step(name)
		t, err := tasks.ForStep(step.Kind(), tasks.StepRef{Workflow: wf.Name, RunID: runID, Step: name}, o.Options)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := tasks.Enqueue(ctx, o.Client, t); err != nil {
			errs = append(errs, fmt.Errorf("step %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Resume enqueues the tasks of every step the run has RUNNING. Task ids are
// deterministic, so steps whose tasks exist are untouched; a step whose task
// was lost (its enqueuer died after recording the transition) gets it back.
func (o *Orchestrator) Resume(ctx context.Context, run runstore.Run) error {
	wf, err := o.Workflow(run.Workflow)
	if err != nil {
		return err
	}
	if run.State != workflow.Running {
		return nil
	}
	return o.enqueueSteps(ctx, wf, run.ID, run.RunningSteps())
}
