package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// A path the API serves, asked with another method, is 405 with Allow;
// a path it does not serve is 404; both answer JSON.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "/api/v1/runs", "GET, HEAD, POST"},
		{"GET", "/api/v1/runs/some-run/cancel", "POST"},
		{"PUT", "/api/v1/workflows", "GET, HEAD"},
	} {
		r := e.do(c.method, c.path, "")
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", c.method, c.path, r.status, r.header.Get("Allow"), c.allow)
		}
		r.errorBody(t)
	}
	r := e.do("GET", "/api/v1/nothing-here", "")
	if r.status != http.StatusNotFound || r.header.Get("Allow") != "" {
		t.Errorf("GET an unknown path: %d Allow %q, want 404", r.status, r.header.Get("Allow"))
	}
	r.errorBody(t)
}

// Bodies: one JSON object and nothing after it, at most 64 KiB (413
// beyond), errors in JSON's terms.
func TestStartBodyIsStrict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	big := `{"start": "2026-10-30", "workflow": "` + strings.Repeat("x", 70<<10) + `"}`
	if r := e.do("POST", "/api/v1/runs", big, auth...); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 70 KiB body: %d %s, want 413", r.status, r.body)
	}
	for body, want := range map[string]string{
		`{"start": "2026-10-30", "dry_run": true} trailing`: "more after the JSON object",
		`{"start": "2026-10-30", "dry_run": true}{"x": 1}`:  "more after the JSON object",
		`{"start": "2026-10-30", "force": "yes"}`:           "force: want true or false, got string",
		`{"start": 20261030}`:                               "start: want a string, got number",
		`{"start": "2026-10-30", "fast": true}`:             `unknown field "fast"`,
		`{"start": "2026-02-30", "dry_run": true}`:          "February 2026 has days 1 to 28",
		`{"start": "2026-10-30"`:                            "the JSON ends too soon",
	} {
		r := e.do("POST", "/api/v1/runs", body, auth...)
		msg, _ := r.errorBody(t)["error"].(string)
		if r.status != http.StatusBadRequest || !strings.Contains(msg, want) {
			t.Errorf("body %s: %d %q, want 400 saying %q", body, r.status, msg, want)
		}
		if strings.Contains(msg, "StartRequest") {
			t.Errorf("body %s: the error names a Go type: %q", body, msg)
		}
	}
}

// 201 Created says where the run is; a 409 names the active run in a
// field of its own.
func TestStartAnswersLocationAndConflictRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("POST", "/api/v1/runs", `{"start": "2026-10-30", "end": "2026-10-31"}`, auth...)
	var res struct {
		Created bool
		Run     struct{ ID string }
	}
	r.json(t, &res)
	if r.status != http.StatusCreated || r.header.Get("Location") != "/api/v1/runs/"+res.Run.ID || res.Run.ID == "" {
		t.Fatalf("start: %d Location %q, run %q", r.status, r.header.Get("Location"), res.Run.ID)
	}
	if got := e.do("GET", r.header.Get("Location"), ""); got.status != http.StatusOK {
		t.Errorf("GET Location: %d", got.status)
	}
	r = e.do("POST", "/api/v1/runs", `{"start": "2026-10-31", "end": "2026-11-01"}`, auth...)
	body := r.errorBody(t)
	if r.status != http.StatusConflict || body["active_run"] != res.Run.ID {
		t.Errorf("overlapping start: %d %v, want 409 with active_run %s", r.status, body, res.Run.ID)
	}
}

// A step's error reads without asynq's "skip retry for the task".
func TestStepErrorWithoutAsynqWords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	run := e.start(window("2026-10-30", "2026-10-30"))
	ref := tasks.StepRef{Workflow: "mobile-user", RunID: run.ID, Step: "segmentlogs-IOS"}
	cause := errors.New("crawl:run: crawl s3://raw: the bucket does not exist: skip retry for the task")
	if _, err := e.orch.Finish(context.Background(), ref, workflow.Failed, nil, cause); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/api/v1/runs/"+run.ID, "")
	if r.status != http.StatusOK || strings.Contains(r.body, "skip retry") || !strings.Contains(r.body, "the bucket does not exist") {
		t.Errorf("run: %d %s", r.status, r.body)
	}
}
