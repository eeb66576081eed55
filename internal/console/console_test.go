package console_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"sluice/internal/access"
	"sluice/internal/api"
	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/scheduler"
	"sluice/internal/testenv"
	"sluice/internal/worker"
	"sluice/pipeline/civil"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const token = "console-test-token-0123456789"

// Every page renders (templates execute against real data: a run that
// succeeded, one that failed, the table), and the errors a page's forms
// meet go to its error bar: an htmx request gets HX-Retarget #flash, a
// navigation a whole page. The browser test (internal/e2e) clicks them.
func TestPagesRenderAndErrorsShow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for k, sub := range map[string]string{"SLUICE_RAW": "raw", "SLUICE_OUTPUT": "out", "SLUICE_CATALOG": "catalog", "SLUICE_SCRATCH": "scratch"} {
		vars[k] = filepath.Join(dir, sub)
		if err := os.MkdirAll(vars[k], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wf, err := workflow.ParseWith(raw, func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, transform.ValidateJob)
	if err != nil {
		t.Fatal(err)
	}
	url0 := testenv.RedisDB(t)
	opt, err := config.ParseRedisURL(url0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	orch, err := orchestrator.New(orchestrator.Config{Workflows: map[string]*workflow.Workflow{wf.Name: wf}, Redis: opt, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Close()
	rawB, err := filestore.New(vars["SLUICE_RAW"])
	if err != nil {
		t.Fatal(err)
	}
	gen := segmentgen.DefaultConfig()
	gen.Start, gen.EventsPerDay = time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC), 50
	if _, err := segmentgen.Generate(context.Background(), rawB, gen); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Orchestrator: orch, Log: log, RunCheckInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := worker.NewServer(opt, worker.ServerConfig{Concurrency: 4, Queues: map[string]int{tasks.QueueCrawl: 1, tasks.QueueTransform: 1},
		TaskCheckInterval: 10 * time.Millisecond, RetryDelay: 10 * time.Millisecond, ShutdownTimeout: time.Second}, log)
	if err := srv.Start(w.Mux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ropt, _ := redis.ParseURL(url0)
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	guard := access.New(access.Config{Token: token, Sessions: redisstore.NewSessions(rdb)})
	svc := &api.Service{Orch: orch, Planner: w, Log: log,
		Open: func(ctx context.Context, loc string) (storage.Bucket, error) {
			return storeurl.Open(ctx, loc, s3store.Options{})
		}}
	h, err := scheduler.Handler(opt, orch, scheduler.HTTPOptions{Service: svc, Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	defer hs.Close()
	in := asynq.NewInspector(opt)
	defer in.Close()
	await := func(id string) {
		t.Helper()
		testenv.EventuallyWithin(t, time.Minute, "run "+id+" ended", func() error {
			run, err := orch.Run(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if run.State == workflow.Running {
				return errors.New("still RUNNING")
			}
			for _, q := range []string{tasks.QueueCrawl, tasks.QueueTransform} {
				act, _ := in.ListActiveTasks(q)
				for _, ti := range act {
					if tasks.OfRun(ti.ID, id) {
						return fmt.Errorf("task %s still running", ti.ID)
					}
				}
			}
			return nil
		})
	}
	start := func(a, b string) string {
		s, _ := civil.Parse(a)
		e, _ := civil.Parse(b)
		st, err := orch.Start(context.Background(), "mobile-user", civil.Window{Start: s, End: e}, redisstore.StartOptions{Trigger: "test", Force: true})
		if err != nil {
			t.Fatal(err)
		}
		await(st.Run.ID)
		return st.Run.ID
	}
	ok := start("2026-10-30", "2026-10-31")
	if err := os.RemoveAll(filepath.Join(vars["SLUICE_RAW"], "segment-logs", "ios")); err != nil {
		t.Fatal(err)
	}
	failed := start("2026-10-30", "2026-10-31")

	get := func(path string, hx bool) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		if hx {
			req.Header.Set("HX-Request", "true")
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	plan := tasks.PlanID(tasks.StepRef{Workflow: "mobile-user", RunID: ok, Step: "mobile-user-daily"})
	for path, want := range map[string][]string{
		"/console/":               {`id="runs"`, "Duration trend", `id="pause-mobile-user"`, ok},
		"/console/?state=FAILED":  {failed, `<option selected>FAILED</option>`},
		"/console/runs/" + ok:     {`id="gantt"`, `data-task-log=`, "reduce 2026-10-30 #0", "Timeline"},
		"/console/runs/" + failed: {`id="retry-form"`, "fewer input objects than their last build"},
		"/console/runs/" + ok + "/tasks/" + plan + "/log":                  {"transform planned", `class="log"`},
		"/console/tables/segmentlogs.mobile?from=2026-10-25&to=2026-11-03": {`id="grid"`, `class="cell published"`, `class="cell missing"`, "Schema versions"},
	} {
		code, _, body := get(path, false)
		if code != http.StatusOK {
			t.Errorf("%s: %d\n%.2000s", path, code, body)
			continue
		}
		for _, s := range want {
			if !strings.Contains(body, s) {
				t.Errorf("%s lacks %q", path, s)
			}
		}
		if strings.Contains(body, "ZgotmplZ") {
			t.Errorf("%s holds a URL html/template refused (#ZgotmplZ)", path)
		}
	}
	// An unknown run: a whole page with the layout (404); asked by htmx,
	// a message for the error bar.
	if code, _, body := get("/console/runs/nope", false); code != http.StatusNotFound || !strings.Contains(body, "console.css") || !strings.Contains(body, "run nope") {
		t.Errorf("unknown run page: %d %.500s", code, body)
	}
	if code, hdr, body := get("/console/runs/nope?part=run", true); code != http.StatusNotFound || hdr.Get("HX-Retarget") != "#flash" || !strings.Contains(body, `class="message error"`) {
		t.Errorf("unknown run over htmx: %d %v %.300s", code, hdr, body)
	}
	// A start refused (not signed in) answers in the error bar.
	req, _ := http.NewRequest("POST", hs.URL+"/console/runs", strings.NewReader(url.Values{"start": {"2026-10-30"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("HX-Retarget") != "#flash" || !strings.Contains(string(b), "Sign in") {
		t.Errorf("start without signing in: %d %v %s", resp.StatusCode, resp.Header, b)
	}
}
