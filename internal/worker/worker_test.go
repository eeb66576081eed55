package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/testenv"
	"sluice/pipeline/civil"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// harness is an in-process deployment over a real redis-server and local
// folders: an asynq server running this package's handlers.
type harness struct {
	t         *testing.T
	redis     asynq.RedisConnOpt
	orch      *orchestrator.Orchestrator
	worker    *Worker
	inspector *asynq.Inspector
	dir       string
	sum       segmentgen.Summary
	log       *slog.Logger
}

func newHarness(t *testing.T, opts tasks.Options) *harness {
	t.Helper()
	url := testenv.RedisDB(t)
	dir := t.TempDir()
	vars := map[string]string{"SLUICE_SHARD_BYTES": "100000"}
	for k, sub := range map[string]string{"SLUICE_RAW": "raw", "SLUICE_OUTPUT": "out", "SLUICE_CATALOG": "catalog", "SLUICE_SCRATCH": "scratch"} {
		vars[k] = "file://" + filepath.Join(dir, sub)
	}
	_, file, _, _ := runtime.Caller(0)
	yml, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wf, err := workflow.ParseWith(yml, func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, transform.ValidateJob)
	if err != nil {
		t.Fatal(err)
	}
	wfs := map[string]*workflow.Workflow{wf.Name: wf}
	redisOpt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: redisOpt, Options: opts, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Close() })
	raw, err := filestore.New(filepath.Join(dir, "raw"))
	if err != nil {
		t.Fatal(err)
	}
	gen := segmentgen.DefaultConfig()
	gen.EventsPerDay = 400
	sum, err := segmentgen.Generate(context.Background(), raw, gen)
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Orchestrator: orch, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, redis: redisOpt, orch: orch, worker: w, inspector: asynq.NewInspector(redisOpt), dir: dir, sum: sum, log: log}
	t.Cleanup(func() { h.inspector.Close() })
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (h *harness) serve() {
	srv := NewServer(h.redis, ServerConfig{Concurrency: 4, Queues: map[string]int{tasks.QueueCrawl: 1, tasks.QueueTransform: 1},
		TaskCheckInterval: 10 * time.Millisecond, RetryDelay: 10 * time.Millisecond, ShutdownTimeout: time.Second}, h.log)
	if err := srv.Start(h.worker.Mux()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(srv.Shutdown)
}

var demoWindow = civil.Window{Start: civil.Date{Year: 2024, Month: 3, Day: 9}, End: civil.Date{Year: 2024, Month: 3, Day: 11}}

func (h *harness) runToEnd() redisstore.Run {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := h.orch.Start(ctx, "mobile-user", demoWindow, redisstore.StartOptions{Trigger: "test"})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.await(st.Run.ID)
}

// failingPuts wraps a real bucket so that writing below one prefix always
// fails, as a broken disk or a denied S3 prefix would.
type failingPuts struct {
	storage.Bucket
	within string
}

func (f failingPuts) Put(ctx context.Context, key string, body io.Reader) error {
	if strings.Contains(key, f.within) {
		return errors.New("injected: disk on fire")
	}
	return f.Bucket.Put(ctx, key, body)
}

func TestShardThatExhaustsItsRetriesFailsTheStepAndTheRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, tasks.Options{MaxRetry: 2, Timeout: time.Minute, Retention: time.Hour})
	h.worker.open = func(ctx context.Context, loc string) (storage.Bucket, error) {
		b, err := storeurl.Open(ctx, loc, config.Common{}.S3)
		if err != nil || !strings.HasSuffix(loc, "/scratch") {
			return b, err
		}
		return failingPuts{b, "map/shard-00001/"}, nil // one shard's output cannot be written
	}
	h.serve()
	run := h.runToEnd()
	if run.State != workflow.Failed {
		t.Fatalf("run ended %s, want FAILED", run.State)
	}
	job := run.Steps["mobile-user-daily"]
	if job.State != workflow.Failed || !strings.Contains(job.Error, "disk on fire") || !strings.Contains(job.Error, tasks.TypeTransformMap) {
		t.Fatalf("job step %s error %q", job.State, job.Error)
	}
	if st := run.Steps["segmentlogs-Mobile"].State; st != workflow.NotRun {
		t.Fatalf("follow-on crawler is %s, want NOT_RUN", st)
	}
	h.awaitQuiet(run.ID) // asynq archives the task once its handler returns
	archived, err := h.inspector.ListArchivedTasks(tasks.QueueTransform)
	if err != nil {
		t.Fatal(err)
	}
	if len(archived) != 1 || archived[0].Type != tasks.TypeTransformMap || archived[0].Retried != 2 {
		t.Fatalf("archive: %+v, want the one map task after 2 retries", archived)
	}
	if _, err := h.inspector.GetTaskInfo(tasks.QueueTransform, tasks.ReduceID(tasks.StepRef{Workflow: "mobile-user", RunID: run.ID, Step: "mobile-user-daily"}, "2024-03-09", 0)); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("a reduce task exists for a failed step: %v", err)
	}
}

func TestDuplicateDeliveryOfTheLastShardEnqueuesFollowOnsOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, tasks.DefaultOptions)
	ctx := context.Background()
	// No server: the test plays the worker, delivering tasks by hand.
	st, err := h.orch.Start(ctx, "mobile-user", demoWindow, redisstore.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(step string) tasks.StepRef {
		return tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: step}
	}
	for _, step := range []string{"segmentlogs-IOS", "segmentlogs-Android"} {
		if _, err := h.orch.Finish(ctx, ref(step), workflow.Succeeded, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	plan, _ := tasks.NewTransformPlanTask(tasks.TransformPlanPayload{StepRef: ref("mobile-user-daily")}, tasks.DefaultOptions)
	mux := h.worker.Mux()
	if err := mux.ProcessTask(ctx, plan); err != nil {
		t.Fatal(err)
	}
	pending, err := h.inspector.ListPendingTasks(tasks.QueueTransform, asynq.PageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	var maps []*asynq.Task
	for _, ti := range pending {
		if ti.Type == tasks.TypeTransformMap {
			p, _ := tasks.Decode[tasks.TransformMapPayload](asynq.NewTask(ti.Type, ti.Payload))
			task, _ := tasks.NewTransformMapTask(p, tasks.DefaultOptions)
			maps = append(maps, task)
		}
	}
	if len(maps) < 2 {
		t.Fatalf("plan made %d map tasks; the test needs several", len(maps))
	}
	pendingOf := func(typ string) []*asynq.TaskInfo {
		pending, err := h.inspector.ListPendingTasks(tasks.QueueTransform, asynq.PageSize(1000))
		if err != nil {
			t.Fatal(err)
		}
		var out []*asynq.TaskInfo
		for _, ti := range pending {
			if ti.Type == typ {
				out = append(out, ti)
			}
		}
		return out
	}
	for i, m := range maps {
		if err := mux.ProcessTask(ctx, m); err != nil {
			t.Fatal(err)
		}
		if i < len(maps)-1 && len(pendingOf(tasks.TypeTransformSplit)) != 0 {
			t.Fatalf("the split task was enqueued after %d of %d shards", i+1, len(maps))
		}
	}
	// The last shard again (a duplicate delivery), and the first (a retry).
	for _, m := range []*asynq.Task{maps[len(maps)-1], maps[0]} {
		if err := mux.ProcessTask(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	splits := pendingOf(tasks.TypeTransformSplit)
	if len(splits) != 1 {
		t.Fatalf("%d split tasks pending, want 1", len(splits))
	}
	// The split task twice (a retry after it enqueued): the same reduce
	// tasks, once each.
	split := asynq.NewTask(splits[0].Type, splits[0].Payload)
	var pendingReduces []int
	for range 2 {
		if err := mux.ProcessTask(ctx, split); err != nil {
			t.Fatal(err)
		}
		pendingReduces = append(pendingReduces, len(pendingOf(tasks.TypeTransformReduce)))
	}
	if n := pendingReduces[0]; n < len(demoWindow.Dates()) || pendingReduces[1] != n {
		t.Fatalf("reduce tasks pending after the split task and its retry: %v, want the same, at least one per date (%d)", pendingReduces, len(demoWindow.Dates()))
	}
}
