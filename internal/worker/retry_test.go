package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/testenv"
	"sluice/pipeline/job"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// counterOf is the value of the mobile-user-daily step's series of a
// counter for a task type, read from reg.
func counterOf(t *testing.T, reg *prometheus.Registry, name, typ string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["step"] == "mobile-user-daily" && labels["type"] == typ {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s series for %s", name, typ)
	return 0
}

// switchedPuts fails writes below a prefix while on is set.
type switchedPuts struct {
	storage.Bucket
	within string
	on     *atomic.Bool
}

func (f switchedPuts) Put(ctx context.Context, key string, body io.Reader) error {
	if f.on.Load() && strings.Contains(key, f.within) {
		return errors.New("injected: disk on fire")
	}
	return f.Bucket.Put(ctx, key, body)
}

// awaitQuiet waits until no task of the run is running.
func (h *harness) awaitQuiet(id string) {
	h.t.Helper()
	testenv.EventuallyWithin(h.t, time.Minute, "no task of run "+id+" running", func() error {
		for _, q := range []string{tasks.QueueCrawl, tasks.QueueTransform} {
			active, _ := h.inspector.ListActiveTasks(q)
			for _, ti := range active {
				if tasks.OfRun(ti.ID, id) {
					return fmt.Errorf("task %s still running", ti.ID)
				}
			}
		}
		return nil
	})
}

func (h *harness) await(id string) redisstore.Run {
	h.t.Helper()
	var run redisstore.Run
	testenv.EventuallyWithin(h.t, time.Minute, "run "+id+" ended", func() error {
		var err error
		if run, err = h.orch.Run(context.Background(), id); err != nil {
			h.t.Fatal(err)
		}
		if run.State == workflow.Running {
			return fmt.Errorf("still RUNNING: %+v", run.Steps)
		}
		return nil
	})
	return run
}

// A run whose map shard failed for good is retried from its map phase:
// the failed shard runs again (and the shards that did not do their work),
// the plan and the shards that did are not redone, and the run succeeds
// with balanced books. The failing attempt's error is in the task's log.
func TestRetryResumesTheFailedPhase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, tasks.Options{MaxRetry: 1, Timeout: time.Minute, Retention: time.Hour})
	var broken atomic.Bool
	broken.Store(true)
	h.worker.open = func(ctx context.Context, loc string) (storage.Bucket, error) {
		b, err := storeurl.Open(ctx, loc, config.Common{}.S3)
		if err != nil || !strings.HasSuffix(loc, "/scratch") {
			return b, err
		}
		return switchedPuts{b, "map/shard-00001/", &broken}, nil
	}
	h.serve()
	run := h.runToEnd()
	if run.State != workflow.Failed {
		t.Fatalf("run ended %s, want FAILED", run.State)
	}
	// A task's end is recorded once its handler returns, after the run
	// ended.
	h.awaitQuiet(run.ID)
	ctx := context.Background()
	before, _, err := h.orch.Timeline().Tasks(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	ref := tasks.StepRef{Workflow: "mobile-user", RunID: run.ID, Step: "mobile-user-daily"}
	attempts := map[string]redisstore.TaskRecord{}
	for _, r := range before {
		attempts[r.ID] = r
	}
	failedMap := attempts[tasks.MapID(ref, 1)]
	if failedMap.AttemptCount != 2 || failedMap.Last().Outcome != redisstore.OutcomeFailed || !strings.Contains(failedMap.Last().Error, "disk on fire") {
		t.Fatalf("the failing shard in the timeline: %+v", failedMap)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.orch.Metrics())
	for name, want := range map[string]float64{"sluice_step_task_retries_total": 1, "sluice_step_tasks_archived_total": 1} {
		if got := counterOf(t, reg, name, tasks.TypeTransformMap); got != want {
			t.Errorf("%s of the map tasks = %v, want %v", name, got, want)
		}
	}
	lines, err := h.orch.Timeline().Log(ctx, run.ID, tasks.MapID(ref, 1))
	if err != nil || !strings.Contains(strings.Join(lines, "\n"), "disk on fire") {
		t.Fatalf("the failing shard's log (%v):\n%s", err, strings.Join(lines, "\n"))
	}

	broken.Store(false)
	if _, err := h.orch.Retry(ctx, "no-such-run", orchestrator.RetryOptions{}); !errors.Is(err, redisstore.ErrNotFound) {
		t.Errorf("retry of an unknown run: %v", err)
	}
	retried, err := h.orch.Retry(ctx, run.ID, orchestrator.RetryOptions{By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if retried.State != workflow.Running || retried.Steps["mobile-user-daily"].State != workflow.Running || retried.Steps["segmentlogs-Mobile"].State != workflow.Waiting ||
		!strings.Contains(retried.Steps["mobile-user-daily"].PreviousError, "disk on fire") || retried.Retries != 1 {
		t.Fatalf("retried run: %+v", retried)
	}
	if _, err := h.orch.Retry(ctx, run.ID, orchestrator.RetryOptions{}); !errors.Is(err, redisstore.ErrNotFailed) {
		t.Errorf("retry of a running run: %v", err)
	}
	done := h.await(run.ID)
	h.awaitQuiet(run.ID)
	if done.State != workflow.Succeeded {
		t.Fatalf("retried run ended %s: %+v", done.State, done.Steps)
	}
	var sum job.Summary
	if err := json.Unmarshal(done.Steps["mobile-user-daily"].Summary, &sum); err != nil || !sum.Balanced || sum.RowsWritten == 0 {
		t.Fatalf("summary of the retried job (%v): %+v", err, sum)
	}
	after, _, err := h.orch.Timeline().Tasks(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range after {
		b, seen := attempts[r.ID]
		switch {
		case r.ID == tasks.MapID(ref, 1):
			if r.AttemptCount != 3 || r.Last().Outcome != redisstore.OutcomeSucceeded {
				t.Errorf("the failed shard after the retry: %d attempts, last %s", r.AttemptCount, r.Last().Outcome)
			}
			// Each attempt is its own, in order (asynq counts the
			// retried task's retries from where they were).
			for i, a := range r.Attempts {
				if a.N != i+1 || a.Ended.Before(a.Started) || i > 0 && a.Started.Before(r.Attempts[i-1].Ended) {
					t.Errorf("the failed shard's attempt %d: %+v", i+1, a)
				}
			}
		case seen && b.Last().Outcome == redisstore.OutcomeSucceeded && r.AttemptCount != b.AttemptCount:
			t.Errorf("task %s did its work before the retry and ran again (%d attempts, %d before)", r.ID, r.AttemptCount, b.AttemptCount)
		case r.Last().Outcome != redisstore.OutcomeSucceeded:
			t.Errorf("task %s ended %s", r.ID, r.Last().Outcome)
		}
	}
	if p := attempts[tasks.PlanID(ref)]; p.AttemptCount != 1 {
		t.Errorf("the plan ran %d times", p.AttemptCount)
	}
}
