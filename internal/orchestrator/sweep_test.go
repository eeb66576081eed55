package orchestrator_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/testenv"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// sweepSetup is an orchestrator of the example workflow whose storage
// locations are folders below one temporary folder, with a clock the test
// moves.
func sweepSetup(t *testing.T) (*orchestrator.Orchestrator, func(loc string) storage.Bucket, *atomic.Int64) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	wfs, err := config.LoadWorkflows(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	opt, err := asynq.ParseRedisURI(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	open := func(loc string) storage.Bucket {
		b, err := filestore.New(filepath.Join(root, url.PathEscape(loc)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: opt, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Open: func(_ context.Context, loc string) (storage.Bucket, error) { return open(loc), nil },
		Now:  func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Close() })
	return orch, open, &clock
}

// leaveScratch writes what a run's job step leaves in its scratch and its
// output's staging folder until it is cleaned.
func leaveScratch(t *testing.T, orch *orchestrator.Orchestrator, open func(string) storage.Bucket, runID string) (scratch, out storage.Bucket) {
	t.Helper()
	wf, _ := orch.Workflow("mobile-user")
	spec := wf.Step("mobile-user-daily").Job
	scratch, out = open(spec.Scratch), open(spec.Output)
	for _, k := range []string{runID + "/mobile-user-daily/plan.json", runID + "/mobile-user-daily/map/shard-00000/run-0"} {
		if err := scratch.Put(t.Context(), k, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Put(t.Context(), "_staging/"+runID+"/mobile-user-daily/date=2024-03-09/part-0.parquet", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	return scratch, out
}

func count(t *testing.T, b storage.Bucket, prefix string) int {
	t.Helper()
	n := 0
	if err := b.List(t.Context(), prefix, func(storage.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// A worker killed after it ended the run's last step but before it cleaned
// the scratch (the task comes back as "step is not running; nothing to
// do") left the run's whole scratch forever: the sweep cleaned only
// cancelled runs and runs gone from Redis. It cleans succeeded runs too.
func TestSweepCleansTheScratchOfSucceededRuns(t *testing.T) {
	t.Parallel()
	orch, open, _ := sweepSetup(t)
	ctx := t.Context()
	st, err := orch.Start(ctx, "mobile-user", window, redisstore.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scratch, out := leaveScratch(t, orch, open, st.Run.ID)
	// Every step ends SUCCEEDED; nobody cleans up after the job step.
	todo := st.Start
	for len(todo) > 0 {
		step := todo[0]
		todo = todo[1:]
		fin, err := orch.Finish(ctx, tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: step}, workflow.Succeeded, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		todo = append(todo, fin.Start...)
	}
	if state, _ := orch.RunState(ctx, st.Run.ID); state != workflow.Succeeded {
		t.Fatalf("run is %s, want SUCCEEDED", state)
	}
	n, err := orch.CleanScratch(ctx, orchestrator.ScratchOptions{})
	if err != nil || n != 1 {
		t.Fatalf("CleanScratch = %d, %v; want 1 run", n, err)
	}
	if left := count(t, scratch, "") + count(t, out, "_staging/"); left != 0 {
		t.Errorf("%d scratch and staging objects left after the sweep", left)
	}
}

// A failed run keeps its scratch while Retry can still resume it (asynq
// retains its tasks), then the sweep removes it, unless told to keep the
// scratch of failed runs.
func TestSweepCleansTheScratchOfFailedRunsOnceTheyCannotBeRetried(t *testing.T) {
	t.Parallel()
	orch, open, clock := sweepSetup(t)
	ctx := t.Context()
	st, err := orch.Start(ctx, "mobile-user", window, redisstore.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scratch, _ := leaveScratch(t, orch, open, st.Run.ID)
	if _, err := orch.Finish(ctx, tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: st.Start[0]}, workflow.Failed, nil, io.ErrUnexpectedEOF); err != nil {
		t.Fatal(err)
	}
	if n, err := orch.CleanScratch(ctx, orchestrator.ScratchOptions{}); err != nil || n != 0 {
		t.Fatalf("CleanScratch of a retryable failed run = %d, %v; want 0", n, err)
	}
	clock.Add(int64(tasks.DefaultOptions.Retention + time.Hour))
	if n, err := orch.CleanScratch(ctx, orchestrator.ScratchOptions{KeepFailed: true}); err != nil || n != 0 {
		t.Fatalf("CleanScratch keeping failed runs = %d, %v; want 0", n, err)
	}
	if count(t, scratch, "") == 0 {
		t.Fatal("the scratch of a failed run was removed")
	}
	if n, err := orch.CleanScratch(ctx, orchestrator.ScratchOptions{}); err != nil || n != 1 {
		t.Fatalf("CleanScratch past the retention = %d, %v; want 1", n, err)
	}
	if left := count(t, scratch, ""); left != 0 {
		t.Errorf("%d scratch objects left", left)
	}
}

// A worker killed inside a folder write leaves a hidden temporary file no
// listing shows; the sweep removes it once it is older than the leftover
// age, and leaves younger ones (a write may be under way).
func TestSweepRemovesLeftoverTempFiles(t *testing.T) {
	t.Parallel()
	orch, open, clock := sweepSetup(t)
	wf, _ := orch.Workflow("mobile-user")
	out := open(wf.Step("mobile-user-daily").Job.Output).(*filestore.Bucket)
	dir := filepath.Join(out.Root(), "year=2024", "month=03", "date=2024-03-09")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".sluice-tmp-123"), []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, _, err := orch.RemoveLeftovers(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("RemoveLeftovers of a fresh file = %d, %v; want 0", n, err)
	}
	clock.Add(int64(2 * time.Hour))
	if n, size, err := orch.RemoveLeftovers(t.Context(), time.Hour); err != nil || n != 1 || size != int64(len("half a file")) {
		t.Fatalf("RemoveLeftovers an hour later = %d, %d, %v; want 1 file", n, size, err)
	}
	if _, err := os.Stat(filepath.Join(out.Root(), "year=2024")); !os.IsNotExist(err) {
		t.Errorf("the emptied folders are still there: %v", err)
	}
}
