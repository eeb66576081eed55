package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
)

// RetryRequest asks for a retry of a failed run.
type RetryRequest struct {
	// AllowShrink lets the retried run through the shrink guard.
	AllowShrink bool   `json:"allow_shrink"`
	By          string `json:"-"`
}

// Retry takes a FAILED run up again from its failed phase (see
// orchestrator.Retry): 409 when it is not FAILED, a task of it still
// runs, asynq no longer holds its tasks, or an active run's window
// overlaps it.
func (s *Service) Retry(ctx context.Context, id string, req RetryRequest) (Run, error) {
	r, err := s.Orch.Retry(ctx, id, orchestrator.RetryOptions{By: req.By, AllowShrink: req.AllowShrink})
	switch {
	case errors.Is(err, redisstore.ErrNotFound):
		return Run{}, notFound(err)
	case errors.Is(err, redisstore.ErrOverlap):
		return Run{}, &Error{Status: http.StatusConflict, Err: err, Fields: map[string]any{"active_run": r.ID}}
	case errors.Is(err, redisstore.ErrNotFailed), errors.Is(err, orchestrator.ErrNotResumable), errors.Is(err, orchestrator.ErrBadWindow):
		return Run{}, conflict(err)
	case err != nil:
		return Run{}, err
	}
	return s.Run(ctx, r.ID)
}

// Pause is a paused schedule as the API shows it.
type Pause struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

func pauseOf(p redisstore.Pause) *Pause { return &Pause{By: p.By, At: p.At.UTC(), Reason: p.Reason} }

// PauseRequest pauses a workflow's schedules.
type PauseRequest struct {
	Reason string `json:"reason"`
	By     string `json:"-"`
}

// Pause pauses a workflow's schedules and returns the workflow.
func (s *Service) Pause(ctx context.Context, name string, req PauseRequest) (Workflow, error) {
	if _, err := s.Orch.PauseSchedule(ctx, name, req.By, req.Reason); err != nil {
		if errors.Is(err, orchestrator.ErrUnknownWorkflow) {
			return Workflow{}, notFound(err)
		}
		return Workflow{}, err
	}
	return s.Workflow(ctx, name)
}

// Resume lets a workflow's schedules start runs again.
func (s *Service) Resume(ctx context.Context, name, by string) (Workflow, error) {
	if err := s.Orch.ResumeSchedule(ctx, name, by); err != nil {
		if errors.Is(err, orchestrator.ErrUnknownWorkflow) {
			return Workflow{}, notFound(err)
		}
		return Workflow{}, err
	}
	return s.Workflow(ctx, name)
}

// Workflow is one loaded workflow with its schedules and whether they are
// paused.
func (s *Service) Workflow(ctx context.Context, name string) (Workflow, error) {
	wf, err := s.Orch.Workflow(name)
	if err != nil {
		return Workflow{}, notFound(err)
	}
	out := WorkflowOf(wf, s.now(), 3)
	p, paused, err := s.Orch.SchedulePaused(ctx, name)
	if err != nil {
		return out, err
	}
	if paused {
		out.Paused = pauseOf(p)
	}
	return out, nil
}
