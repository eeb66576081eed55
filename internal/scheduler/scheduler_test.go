package scheduler_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"sluice/internal/api"
	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/scheduler"
	"sluice/internal/testenv"
	"sluice/pipeline/civil"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// setup is an orchestrator with the example workflow, its schedule fired
// every minute.
func setup(t *testing.T) (*orchestrator.Orchestrator, config.Redis) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	everyMinute := strings.Replace(string(raw), `cron: "0 13 * * *"`, `cron: "* * * * *"`, 1)
	wf, err := workflow.Parse([]byte(everyMinute), transform.ValidateJob)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := config.ParseRedisURL(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: map[string]*workflow.Workflow{wf.Name: wf}, Redis: opt, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Close() })
	return orch, opt
}

// The schedule loop fires at the next tick and starts the run of the
// tick's window; Stop ends the loops and waits for them.
func TestScheduleFiresAndStops(t *testing.T) {
	t.Parallel()
	orch, _ := setup(t)
	// A clock 300 ms before a minute's end: the next tick comes soon.
	now := time.Now()
	tick := now.Truncate(time.Minute).Add(time.Minute)
	offset := tick.Add(-300 * time.Millisecond).Sub(now)
	s, err := scheduler.New(scheduler.Config{Orchestrator: orch, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return time.Now().Add(offset) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err == nil {
		t.Error("a second Start was accepted")
	}
	// Await the run in the run store (polled: it is a key in Redis).
	var runs []redisstore.Run
	testenv.EventuallyWithin(t, 30*time.Second, "a run after the tick", func() error {
		if runs, err = orch.Runs(ctx, "mobile-user", 10); err != nil {
			t.Fatal(err)
		}
		if len(runs) == 0 {
			return errors.New("no run")
		}
		return nil
	})
	if len(runs) != 1 || runs[0].Trigger != "mobile-user-start" {
		t.Fatalf("runs after the tick: %+v", runs)
	}
	wf, _ := orch.Workflow("mobile-user")
	if want := wf.Step("mobile-user-start").Trigger.Schedule.WindowFor(tick); runs[0].Window != want {
		t.Errorf("window %s, want %s", runs[0].Window, want)
	}
	stopped := make(chan struct{})
	go func() { s.Stop(); s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
}

// Two schedulers firing the same tick start one run.
func TestTwoSchedulersFireOneRun(t *testing.T) {
	t.Parallel()
	orch, _ := setup(t)
	wf, _ := orch.Workflow("mobile-user")
	trig := wf.Step("mobile-user-start")
	fire := time.Date(2026, 11, 2, 13, 0, 0, 0, time.UTC)
	for range 2 {
		s, err := scheduler.New(scheduler.Config{Orchestrator: orch, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		s.Fire(t.Context(), wf, trig, fire)
	}
	runs, err := orch.Runs(t.Context(), "mobile-user", 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %d, %v; want 1", len(runs), err)
	}
}

func TestHandlerServesHealthAndRuns(t *testing.T) {
	t.Parallel()
	orch, opt := setup(t)
	win := civil.Window{Start: civil.Date{Year: 2026, Month: 10, Day: 30}, End: civil.Date{Year: 2026, Month: 10, Day: 30}}
	if _, err := orch.Start(t.Context(), "mobile-user", win, redisstore.StartOptions{Trigger: "test"}); err != nil {
		t.Fatal(err)
	}
	h, err := scheduler.Handler(opt, orch, scheduler.HTTPOptions{Service: &api.Service{Orch: orch, Log: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for path, want := range map[string]string{"/livez": "ok", "/readyz": "ok", "/healthz": "ok", "/runs": `"trigger": "test"`, "/api/v1/runs": `"window": {`, "/metrics": "sluice_workflow_recent_runs",
		"/console/": "mobile-user", "/api/v1/workflows": `"cron": "* * * * *"`} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s, want %q in %.300s", path, resp.Status, want, body)
		}
	}
}

// Readiness follows Redis, liveness does not: with nothing listening at the
// Redis address, /readyz and /healthz answer 503 naming Redis and the
// address, /livez 200.
func TestHandlerIsNotReadyWithoutRedis(t *testing.T) {
	t.Parallel()
	orch, _ := setup(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	gone, err := config.ParseRedisURL("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	h, err := scheduler.Handler(gone, orch, scheduler.HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for path, want := range map[string]int{"/livez": 200, "/readyz": 503, "/healthz": 503} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s %s, want %d", path, resp.Status, body, want)
		}
		if want == 503 && !strings.Contains(string(body), "redis "+addr+": ") {
			t.Errorf("GET %s: %q does not name Redis and its address", path, body)
		}
	}
}
