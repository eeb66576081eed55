package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"sluice/internal/orchestrator"
	"sluice/pipeline/workflow"
	"sluice/tasks"

	"github.com/hibiken/asynq"
)

// POST /api/v1/runs/{id}/cancel: the token is needed; the run ends
// CANCELLED with its queued tasks removed and who cancelled it in its
// steps' errors; a second cancel is a 409, an unknown run a 404.
func TestCancelRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	run := e.start(runWindow) // no workers: its first crawl stays queued
	if r := e.do("POST", "/api/v1/runs/"+run.ID+"/cancel", ""); r.status != http.StatusUnauthorized {
		t.Errorf("cancel without the token: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/api/v1/runs/"+run.ID+"/cancel", "", auth...)
	var got struct {
		Run struct {
			ID, State string
			Steps     []struct{ Name, State, Error string }
		}
	}
	r.json(t, &got)
	if r.status != http.StatusOK || got.Run.ID != run.ID || got.Run.State != string(workflow.Cancelled) {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	cancelled := false
	for _, s := range got.Run.Steps {
		if s.State == string(workflow.Cancelled) {
			cancelled = true
			if !strings.Contains(s.Error, "cancelled over the API by") {
				t.Errorf("step %s: error %q does not say who cancelled it", s.Name, s.Error)
			}
		}
	}
	if !cancelled {
		t.Errorf("no step CANCELLED: %s", r.body)
	}
	in := asynq.NewInspector(e.redis)
	defer in.Close()
	ref := tasks.StepRef{Workflow: "mobile-user", RunID: run.ID, Step: "segmentlogs-IOS"}
	if _, err := in.GetTaskInfo(tasks.QueueCrawl, tasks.CrawlRunID(ref)); err == nil {
		t.Error("the cancelled run's queued crawl is still in its queue")
	}

	r = e.do("POST", "/api/v1/runs/"+run.ID+"/cancel", "", auth...)
	if body := r.errorBody(t); r.status != http.StatusConflict || !strings.Contains(body["error"].(string), orchestrator.ErrNotRunning.Error()) {
		t.Errorf("second cancel: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v1/runs/no-such-run/cancel", "", auth...); r.status != http.StatusNotFound {
		t.Errorf("cancel of an unknown run: %d %s", r.status, r.body)
	}
}

// GET /api/v1/workflows/{name}: the steps with their edges and the
// schedules with their next fire times; an unknown name is a 404.
func TestWorkflow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("GET", "/api/v1/workflows/mobile-user", "")
	var wf struct {
		Name  string
		Steps []struct {
			Name, Kind string
			After      []string
		}
		Schedules []struct {
			Trigger, Cron string
			Next          []struct{ At time.Time }
		}
	}
	r.json(t, &wf)
	if r.status != http.StatusOK || wf.Name != "mobile-user" || len(wf.Steps) != 8 {
		t.Fatalf("workflow: %d %s", r.status, r.body)
	}
	after := map[string][]string{}
	for _, s := range wf.Steps {
		after[s.Name] = s.After
	}
	if a := after["segmentlogs-Android"]; len(a) != 1 || a[0] != "android-crawler-trigger" {
		t.Errorf("segmentlogs-Android comes after %v, want its trigger", a)
	}
	if len(wf.Schedules) != 1 || wf.Schedules[0].Trigger != "mobile-user-start" || wf.Schedules[0].Cron != "0 13 * * *" || len(wf.Schedules[0].Next) == 0 {
		t.Errorf("schedules: %+v", wf.Schedules)
	}
	if r := e.do("GET", "/api/v1/workflows/nope", ""); r.status != http.StatusNotFound {
		t.Errorf("unknown workflow: %d %s", r.status, r.body)
	}
}
