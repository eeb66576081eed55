// Package api is the scheduler's HTTP API, version 1, under /api/v1: list
// and get runs, start a run for a window (or dry-run it), cancel a run, and
// the workflows with their schedules. Answers are JSON with snake_case
// fields and ISO 8601 times and dates (docs/API.md). The Service behind it
// is what the console's pages and the CLI's -o json use too.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
	"sluice/pipeline/storage"
)

// Planner answers dry runs (job.Planner does).
type Planner interface {
	DryRun(ctx context.Context, workflow string, win civil.Window, force bool) ([]job.StepDryRun, error)
}

// Service is what the API and the console do.
type Service struct {
	Orch    *orchestrator.Orchestrator
	Planner Planner
	Log     *slog.Logger
	Now     func() time.Time // nil: time.Now
	// DryRuns is how many dry runs may run at once (0:
	// DefaultDryRuns); one more is refused (429) rather than queued, so
	// that dry runs, which list the input and read bookmarks, cannot pile
	// up. DryRunTimeout bounds each (0: DefaultDryRunTimeout).
	DryRuns       int
	DryRunTimeout time.Duration
	// Open opens a storage location (the tables' outputs, for their
	// partitions and schema); nil: the tables' pages are unavailable.
	Open func(ctx context.Context, location string) (storage.Bucket, error)

	once       sync.Once
	dryRunSlot chan struct{}
	bucketCache
}

// Dry run bounds by default.
const (
	DefaultDryRuns       = 2
	DefaultDryRunTimeout = time.Minute
)

func (s *Service) init() {
	s.once.Do(func() {
		n := s.DryRuns
		if n <= 0 {
			n = DefaultDryRuns
		}
		s.dryRunSlot = make(chan struct{}, n)
		if s.DryRunTimeout <= 0 {
			s.DryRunTimeout = DefaultDryRunTimeout
		}
	})
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Runs lists the newest runs of every workflow (or of one), newest first.
func (s *Service) Runs(ctx context.Context, workflow string, limit int) ([]Run, error) {
	p, err := s.History(ctx, Filter{Workflow: workflow}, "", limit)
	return p.Runs, err
}

// Run reads one run with its steps.
func (s *Service) Run(ctx context.Context, id string) (Run, error) {
	run, _, err := s.RunAndTimeline(ctx, id)
	return run, err
}

// RunAndTimeline reads one run with its steps, and its timeline (one read
// of each: what the run page shows). A timeline that cannot be read is
// logged and left empty; the run is still answered.
func (s *Service) RunAndTimeline(ctx context.Context, id string) (Run, Timeline, error) {
	r, err := s.Orch.Run(ctx, id)
	if errors.Is(err, redisstore.ErrNotFound) {
		return Run{}, Timeline{}, notFound(err)
	}
	if err != nil {
		return Run{}, Timeline{}, err
	}
	wf, _ := s.Orch.Workflow(r.Workflow)
	run := RunOf(r, wf, true)
	recs, left, err := s.Orch.Timeline().Tasks(ctx, id)
	if err != nil {
		if s.Log != nil {
			s.Log.Warn("could not read the run's timeline", "run", id, "err", err)
		}
		return run, Timeline{}, nil
	}
	tasksFromTimeline(&run, recs)
	return run, timelineOf(r, recs, left, s.now()), nil
}

// tasksFromTimeline lists each step's tasks as its workers recorded them
// (those that ran, with how they ended) instead of as the step's summary
// implies; a step the timeline knows nothing of keeps the implied list.
func tasksFromTimeline(run *Run, recs []redisstore.TaskRecord) {
	byStep := map[string][]Task{}
	for _, rec := range recs {
		phase, _, label := taskPart(run.ID, rec.Step, rec.ID)
		byStep[rec.Step] = append(byStep[rec.Step], Task{ID: rec.ID, Queue: rec.Queue, Kind: phase, Label: label, URL: asynqmonURL(rec.Queue, rec.ID), Outcome: rec.Last().Outcome})
	}
	for i := range run.Steps {
		if ts := byStep[run.Steps[i].Name]; len(ts) > 0 {
			if len(ts) > maxTimelineTasks {
				ts = ts[:maxTimelineTasks]
			}
			run.Steps[i].Tasks = ts
		}
	}
}

// maxTimelineTasks bounds a step's task list in a run's answer (the
// timeline, GET …/tasks, has them all).
const maxTimelineTasks = 500

// StartRequest asks for a run (or a dry run) of a workflow over a window.
type StartRequest struct {
	Workflow string `json:"workflow"`
	Start    string `json:"start"`
	End      string `json:"end"` // empty: Start
	// Force rebuilds every partition of the window; AllowShrink lets the
	// run empty or shrink published partitions (see the shrink guard).
	Force       bool `json:"force"`
	AllowShrink bool `json:"allow_shrink"`
	// DryRun answers what the run would rebuild, starting nothing.
	DryRun bool `json:"dry_run"`
	// Trigger and By are recorded with the run (set by the server).
	Trigger string `json:"-"`
	By      string `json:"-"`
}

// StartResult is the answer to a start.
type StartResult struct {
	// Created is false when a run of the same window was already active:
	// Run is that run.
	Created bool    `json:"created"`
	Run     *Run    `json:"run,omitempty"`
	DryRun  *DryRun `json:"dry_run,omitempty"`
}

// Start starts (or dry-runs) a run.
func (s *Service) Start(ctx context.Context, req StartRequest) (StartResult, error) {
	if req.Workflow == "" {
		if names := s.Orch.Workflows(); len(names) == 1 {
			req.Workflow = names[0]
		} else {
			return StartResult{}, badRequest(errors.New("workflow: which one? this scheduler has several"))
		}
	}
	if _, err := s.Orch.Workflow(req.Workflow); err != nil {
		return StartResult{}, badRequest(fmt.Errorf("workflow: %w", err))
	}
	if req.Start == "" {
		return StartResult{}, badRequest(errors.New("start: a date is required, e.g. 2026-10-30"))
	}
	win, err := civil.ParseWindow(req.Start, req.End)
	if err != nil {
		return StartResult{}, badRequest(fmt.Errorf("start/end: %w", err))
	}
	if err := s.Orch.CheckWindow(req.Workflow, win); err != nil {
		return StartResult{}, badRequest(err)
	}
	if req.DryRun {
		steps, err := s.dryRun(ctx, req.Workflow, win, req.Force)
		if err != nil {
			return StartResult{}, err
		}
		dr := &DryRun{Workflow: req.Workflow, Window: windowOf(win), Force: req.Force, Steps: steps}
		if runs, err := s.Orch.Runs(ctx, req.Workflow, 20); err == nil {
			for _, r := range runs {
				if r.State == "RUNNING" && r.Window.Overlaps(win) {
					dr.Active = r.ID
				}
			}
		}
		return StartResult{DryRun: dr}, nil
	}
	st, err := s.Orch.Start(ctx, req.Workflow, win, redisstore.StartOptions{Trigger: req.Trigger, By: req.By, Force: req.Force, AllowShrink: req.AllowShrink})
	if errors.Is(err, redisstore.ErrOverlap) {
		return StartResult{}, &Error{Status: http.StatusConflict, Err: err, Fields: map[string]any{"active_run": st.Run.ID}}
	}
	if err != nil {
		return StartResult{}, err
	}
	wf, _ := s.Orch.Workflow(req.Workflow)
	run := RunOf(st.Run, wf, true)
	return StartResult{Created: st.Created, Run: &run}, nil
}

// dryRun asks the planner, holding one of the dry-run slots (429 when none
// is free) for at most DryRunTimeout (503 past it).
func (s *Service) dryRun(ctx context.Context, wf string, win civil.Window, force bool) ([]job.StepDryRun, error) {
	s.init()
	select {
	case s.dryRunSlot <- struct{}{}:
		defer func() { <-s.dryRunSlot }()
	default:
		return nil, &Error{Status: http.StatusTooManyRequests, RetryAfter: 5,
			Err: fmt.Errorf("%d dry runs are under way, the most this scheduler answers at once: try again in a few seconds", cap(s.dryRunSlot))}
	}
	ctx, cancel := context.WithTimeout(ctx, s.DryRunTimeout)
	defer cancel()
	steps, err := s.Planner.DryRun(ctx, wf, win, force)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, &Error{Status: http.StatusServiceUnavailable, Err: fmt.Errorf("the dry run took longer than %s (listing the input and reading the bookmarks): try a narrower window", s.DryRunTimeout)}
	}
	return steps, err
}

// Cancel cancels a running run.
func (s *Service) Cancel(ctx context.Context, id, reason string) (Run, error) {
	r, err := s.Orch.Cancel(ctx, id, reason)
	switch {
	case errors.Is(err, redisstore.ErrNotFound):
		return Run{}, notFound(err)
	case errors.Is(err, orchestrator.ErrNotRunning):
		return Run{}, conflict(err)
	case err != nil:
		return Run{}, err
	}
	wf, _ := s.Orch.Workflow(r.Workflow)
	return RunOf(r, wf, true), nil
}

// Workflows lists the loaded workflows with the next fire times of their
// schedules, and whether they are paused (a workflow whose pause cannot be
// read is listed without it).
func (s *Service) Workflows(ctx context.Context) []Workflow {
	var out []Workflow
	for _, name := range s.Orch.Workflows() {
		wf, err := s.Workflow(ctx, name)
		if err != nil && s.Log != nil {
			s.Log.Warn("could not read whether the schedule is paused", "workflow", name, "err", err)
		}
		out = append(out, wf)
	}
	return out
}

// Error is an error with the HTTP status it answers with.
type Error struct {
	Status int
	Err    error
	// Fields are added to the JSON error body beside "error" (e.g. a 409's
	// "active_run"), for clients that should not parse the message.
	Fields map[string]any
	// RetryAfter, when set, is the Retry-After header's seconds.
	RetryAfter int
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func badRequest(err error) error { return &Error{Status: http.StatusBadRequest, Err: err} }
func notFound(err error) error   { return &Error{Status: http.StatusNotFound, Err: err} }
func conflict(err error) error   { return &Error{Status: http.StatusConflict, Err: err} }

// Status is the HTTP status an error of the Service answers with.
func Status(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status
	}
	return http.StatusInternalServerError
}
