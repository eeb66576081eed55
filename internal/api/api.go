// Package api is the scheduler's HTTP API, version 1, under /api/v1: list
// and get runs, start a run for a window (or dry-run it), cancel a run, and
// the workflows with their schedules. Answers are JSON with snake_case
// fields and ISO 8601 times and dates (docs/API.md). The Service behind it
// is what the console's pages and the CLI's -o json use too.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"sluice/internal/access"
	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/worker"
	"sluice/pipeline/civil"
)

// Planner answers dry runs (worker.Worker does).
type Planner interface {
	DryRun(ctx context.Context, workflow string, win civil.Window, force bool) ([]worker.StepDryRun, error)
}

// Service is what the API and the console do.
type Service struct {
	Orch    *orchestrator.Orchestrator
	Planner Planner
	Log     *slog.Logger
	Now     func() time.Time // nil: time.Now
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Runs lists the newest runs of every workflow (or of one), newest first.
func (s *Service) Runs(ctx context.Context, workflow string, limit int) ([]Run, error) {
	names := s.Orch.Workflows()
	if len(names) == 0 && workflow == "" {
		// No workflow files (a reader outside the repository): the
		// workflows Redis has history of.
		var err error
		if names, err = s.Orch.HistoryWorkflows(ctx); err != nil {
			return nil, err
		}
	}
	if workflow != "" {
		if _, err := s.Orch.Workflow(workflow); err != nil {
			return nil, notFound(err)
		}
		names = []string{workflow}
	}
	var out []Run
	for _, name := range names {
		runs, err := s.Orch.Runs(ctx, name, limit)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			out = append(out, RunOf(r, nil, false))
		}
	}
	sortNewestFirst(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func sortNewestFirst(runs []Run) {
	for i := 1; i < len(runs); i++ {
		for j := i; j > 0 && runs[j].CreatedAt.After(runs[j-1].CreatedAt); j-- {
			runs[j], runs[j-1] = runs[j-1], runs[j]
		}
	}
}

// Run reads one run with its steps.
func (s *Service) Run(ctx context.Context, id string) (Run, error) {
	r, err := s.Orch.Run(ctx, id)
	if errors.Is(err, redisstore.ErrNotFound) {
		return Run{}, notFound(err)
	}
	if err != nil {
		return Run{}, err
	}
	wf, _ := s.Orch.Workflow(r.Workflow)
	return RunOf(r, wf, true), nil
}

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
	if req.DryRun {
		steps, err := s.Planner.DryRun(ctx, req.Workflow, win, req.Force)
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
		return StartResult{}, conflict(err)
	}
	if err != nil {
		return StartResult{}, err
	}
	wf, _ := s.Orch.Workflow(req.Workflow)
	run := RunOf(st.Run, wf, true)
	return StartResult{Created: st.Created, Run: &run}, nil
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
// schedules.
func (s *Service) Workflows() []Workflow {
	var out []Workflow
	for _, name := range s.Orch.Workflows() {
		wf, _ := s.Orch.Workflow(name)
		out = append(out, WorkflowOf(wf, s.now(), 3))
	}
	return out
}

// Error is an error with the HTTP status it answers with.
type Error struct {
	Status int
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func badRequest(err error) error { return &Error{http.StatusBadRequest, err} }
func notFound(err error) error   { return &Error{http.StatusNotFound, err} }
func conflict(err error) error   { return &Error{http.StatusConflict, err} }

// Status is the HTTP status an error of the Service answers with.
func Status(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status
	}
	return http.StatusInternalServerError
}

// Register adds the API's routes to mux, behind g.
func Register(mux *http.ServeMux, s *Service, g *access.Guard) {
	read := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, g.Read(h)) }
	read("GET /api/v1/runs", s.listRuns)
	read("GET /api/v1/runs/{id}", s.getRun)
	read("GET /api/v1/workflows", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"workflows": s.Workflows()})
	})
	// A dry run changes nothing, so reading is enough for it; a start
	// needs the token (checked in startRun).
	read("POST /api/v1/runs", func(w http.ResponseWriter, r *http.Request) { s.startRun(w, r, g) })
	mux.Handle("POST /api/v1/runs/{id}/cancel", g.Write(http.HandlerFunc(s.cancelRun)))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{http.StatusNotFound, fmt.Errorf("no such endpoint: %s %s (see docs/API.md)", r.Method, r.URL.Path)})
	})
}

func (s *Service) listRuns(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, badRequest(fmt.Errorf("limit: %q is not a number from 1 to 1000", v)))
			return
		}
		limit = n
	}
	runs, err := s.Runs(r.Context(), r.URL.Query().Get("workflow"), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	if runs == nil {
		runs = []Run{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

func (s *Service) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *Service) startRun(w http.ResponseWriter, r *http.Request, g *access.Guard) {
	// A JSON body only: a browser cannot send one cross-origin without a
	// preflight (a second guard beside the origin check).
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		writeError(w, &Error{http.StatusUnsupportedMediaType, errors.New("the body must be JSON (Content-Type: application/json)")})
		return
	}
	var req StartRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, badRequest(fmt.Errorf("body: %w", err)))
		return
	}
	if !req.DryRun {
		ok := false
		g.Write(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ok = true })).ServeHTTP(w, r)
		if !ok {
			return // refused, answered by the guard
		}
	}
	req.Trigger, req.By = "api", Caller(r)
	res, err := s.Start(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, res)
}

func (s *Service) cancelRun(w http.ResponseWriter, r *http.Request) {
	reason := "cancelled over the API by " + Caller(r)
	run, err := s.Cancel(r.Context(), r.PathValue("id"), reason)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": run})
}

// Caller describes who sent a request, for the run's record: the client's
// address and user agent (never a credential).
func Caller(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) > 60 {
		ua = ua[:60]
	}
	return fmt.Sprintf("%s (%s)", r.RemoteAddr, ua)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, Status(err), map[string]string{"error": config.RedactText(err.Error())})
}
