package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/access"
	"sluice/internal/api"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
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

const token = "api-test-token-0123456789"

// env is the API over a real Redis, the example workflow on local folders
// and a few days of sample logs.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	orch  *orchestrator.Orchestrator
	svc   *api.Service
	redis asynq.RedisConnOpt
	dir   string // raw/, out/, catalog/, scratch/
}

// option changes the service before it serves.
type option func(*api.Service)

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir}
	locs := map[string]string{}
	for _, k := range []string{"raw", "out", "catalog", "scratch"} {
		locs[k] = filepath.Join(dir, k)
		if err := os.MkdirAll(locs[k], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"SLUICE_RAW": locs["raw"], "SLUICE_OUTPUT": locs["out"], "SLUICE_CATALOG": locs["catalog"], "SLUICE_SCRATCH": locs["scratch"]}
	wf, err := workflow.ParseWith(raw, func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, transform.ValidateJob)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := asynq.ParseRedisURI(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	e.redis = opt
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.orch, err = orchestrator.New(orchestrator.Config{Workflows: map[string]*workflow.Workflow{wf.Name: wf}, Redis: opt, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.orch.Close() })
	planner, err := worker.New(worker.Config{Orchestrator: e.orch, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = &api.Service{Orch: e.orch, Planner: planner, Log: log,
		Open: func(ctx context.Context, loc string) (storage.Bucket, error) {
			return storeurl.Open(ctx, loc, s3store.Options{})
		}}
	for _, o := range opts {
		o(e.svc)
	}
	g := access.New(access.Config{Token: token})
	mux := http.NewServeMux()
	api.Register(mux, e.svc, g)
	e.srv = httptest.NewServer(g.SameOrigin(mux))
	t.Cleanup(e.srv.Close)
	return e
}

// generate writes three days of sample logs from 2026-10-30 to raw/.
func (e *env) generate() {
	e.t.Helper()
	b, err := filestore.New(filepath.Join(e.dir, "raw"))
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := segmentgen.DefaultConfig()
	cfg.Start, cfg.EventsPerDay = time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC), 50
	if _, err := segmentgen.Generate(context.Background(), b, cfg); err != nil {
		e.t.Fatal(err)
	}
}

// response is an answer: status, headers and body.
type response struct {
	status int
	header http.Header
	body   string
}

// json decodes the body into v.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

// errorBody is the body of an error answer.
func (r response) errorBody(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	r.json(t, &v)
	if _, ok := v["error"].(string); !ok {
		t.Fatalf("no error in %s", r.body)
	}
	return v
}

// do sends a request; header pairs follow the body.
func (e *env) do(method, path, body string, header ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

// auth is the header pair that carries the token.
var auth = []string{"Authorization", "Bearer " + token}

// start starts a run of win directly (not over the API).
func (e *env) start(win civil.Window) redisstore.Run {
	e.t.Helper()
	st, err := e.orch.Start(context.Background(), "mobile-user", win, redisstore.StartOptions{Trigger: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Run
}

func day(s string) civil.Date {
	d, err := civil.Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

func window(a, b string) civil.Window { return civil.Window{Start: day(a), End: day(b)} }

// serveWorkers runs this package's workers in-process, on the env's Redis.
func (e *env) serveWorkers() {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := worker.New(worker.Config{Orchestrator: e.orch, Log: log, RunCheckInterval: 50 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	srv := worker.NewServer(e.redis, worker.ServerConfig{Concurrency: 4, Queues: map[string]int{tasks.QueueCrawl: 1, tasks.QueueTransform: 1},
		TaskCheckInterval: 10 * time.Millisecond, RetryDelay: 10 * time.Millisecond, ShutdownTimeout: time.Second}, log)
	if err := srv.Start(w.Mux()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(srv.Shutdown)
}

// await waits until a run has ended and none of its tasks runs (a task's
// end is recorded in the timeline once its handler returns).
func (e *env) await(id string) redisstore.Run {
	e.t.Helper()
	in := asynq.NewInspector(e.redis)
	defer in.Close()
	var run redisstore.Run
	testenv.EventuallyWithin(e.t, time.Minute, "run "+id+" ended", func() error {
		var err error
		if run, err = e.orch.Run(context.Background(), id); err != nil {
			e.t.Fatal(err)
		}
		if run.State == workflow.Running {
			return fmt.Errorf("still RUNNING: %+v", run.Steps)
		}
		for _, q := range []string{tasks.QueueCrawl, tasks.QueueTransform} {
			active, _ := in.ListActiveTasks(q)
			for _, ti := range active {
				if tasks.OfRun(ti.ID, id) {
					return fmt.Errorf("task %s still running", ti.ID)
				}
			}
		}
		return nil
	})
	return run
}

// runWindow is the window the sample logs cover.
var runWindow = window("2026-10-30", "2026-11-01")
