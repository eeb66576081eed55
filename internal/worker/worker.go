// Package worker holds the asynq handlers that run workflow steps: a crawl,
// and the plan, map, bucket, reduce and commit phases of a transform job.
// Handlers translate task payloads into calls to pipeline/crawl and
// pipeline/job, enqueue the work those calls make ready, and report results
// through the orchestrator; the domain packages never see asynq.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/orchestrator"
	"sluice/pipeline/barrier"
	"sluice/pipeline/fault"
	"sluice/pipeline/runstore"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// Worker runs steps. Create it with New and register Mux with an asynq
// server.
type Worker struct {
	orch    *orchestrator.Orchestrator
	barrier *barrier.Barrier
	log     *slog.Logger
	metrics *Metrics
	mapOpts transform.MapOptions
	reduce  transform.ReduceOptions
	fleet   func(context.Context) (int, error)

	mu      sync.Mutex
	buckets map[string]storage.Bucket
	// open opens a location; tests wrap it to inject storage faults.
	open func(ctx context.Context, location string) (storage.Bucket, error)
}

// Config wires a Worker.
type Config struct {
	Orchestrator *orchestrator.Orchestrator
	S3           s3store.Options
	Log          *slog.Logger
	Metrics      *Metrics // nil: not exported
	// TempDir is the local folder for files being written and rows spilled
	// by reduce tasks; empty means os.TempDir().
	TempDir string
	// TaskMemory is what one map or reduce task may hold in rows before it
	// sorts them into runs on TempDir (see TaskMemory); zero means the
	// transform's defaults.
	TaskMemory int64
	// Fleet, when set, counts the transform tasks the live fleet runs at
	// once, so that the plan cuts enough shards for it (see FleetSlots).
	Fleet func(context.Context) (int, error)
}

// TaskMemory divides a worker's memory limit among its concurrent tasks:
// rows get about a third of it (the rest is the Go heap's headroom and the
// Parquet writer's buffers), never less than 16 MiB a task.
func TaskMemory(limit int64, concurrency int) int64 {
	return max(limit/3/int64(max(concurrency, 1)), 16<<20)
}

// FleetSlots counts the concurrency of the live asynq servers that serve
// the transform queue: what the plan spreads map tasks over.
func FleetSlots(in *asynq.Inspector) func(context.Context) (int, error) {
	return func(context.Context) (int, error) {
		servers, err := in.Servers()
		if err != nil {
			return 0, err
		}
		n := 0
		for _, s := range servers {
			if _, ok := s.Queues[tasks.QueueTransform]; ok && s.Status == "active" {
				n += s.Concurrency
			}
		}
		return n, nil
	}
}

// New returns a worker.
func New(cfg Config) *Worker {
	rdb := cfg.Orchestrator.Runs.Redis()
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Worker{
		orch:    cfg.Orchestrator,
		barrier: barrier.New(rdb, 7*24*time.Hour),
		log:     cfg.Log,
		metrics: m,
		mapOpts: transform.MapOptions{TempDir: cfg.TempDir, BufferBytes: cfg.TaskMemory},
		reduce:  transform.ReduceOptions{TempDir: cfg.TempDir, MemoryBytes: cfg.TaskMemory},
		fleet:   cfg.Fleet,
		buckets: map[string]storage.Bucket{},
		open: func(ctx context.Context, location string) (storage.Bucket, error) {
			return storeurl.Open(ctx, location, cfg.S3)
		},
	}
}

// Mux routes every task type of package tasks to its handler, behind the
// middleware that turns a final failure into a FAILED step.
func (w *Worker) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Use(w.observe, w.failStepOnLastAttempt)
	mux.HandleFunc(tasks.TypeCrawlRun, w.handleCrawlRun)
	mux.HandleFunc(tasks.TypeTransformPlan, w.handleTransformPlan)
	mux.HandleFunc(tasks.TypeTransformMap, w.handleTransformMap)
	mux.HandleFunc(tasks.TypeTransformBucket, w.handleTransformBucket)
	mux.HandleFunc(tasks.TypeTransformReduce, w.handleTransformReduce)
	mux.HandleFunc(tasks.TypeTransformCommit, w.handleTransformCommit)
	return mux
}

// bucket opens (once per location) a bucket.
func (w *Worker) bucket(ctx context.Context, location string) (storage.Bucket, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b, ok := w.buckets[location]; ok {
		return b, nil
	}
	b, err := w.open(ctx, location)
	if err != nil {
		return nil, err
	}
	w.buckets[location] = b
	return b, nil
}

// activeStep loads the run and tells whether the step is still RUNNING. A
// task for a step that has finished (a duplicate delivery, or a shard of a
// step another shard already failed) has nothing to do.
func (w *Worker) activeStep(ctx context.Context, ref tasks.StepRef) (*workflow.Workflow, *workflow.Step, runstore.Run, bool, error) {
	wf, err := w.orch.Workflow(ref.Workflow)
	if err != nil {
		return nil, nil, runstore.Run{}, false, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	step := wf.Step(ref.Step)
	if step == nil {
		return nil, nil, runstore.Run{}, false, fmt.Errorf("workflow %s has no step %q: %w", wf.Name, ref.Step, asynq.SkipRetry)
	}
	run, err := w.orch.Runs.Get(ctx, ref.RunID)
	if errors.Is(err, runstore.ErrNotFound) {
		return nil, nil, run, false, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return nil, nil, run, false, err
	}
	if st := run.Steps[ref.Step].State; st != workflow.Running {
		// A duplicate or late task of a finished step. Its first delivery
		// may have died between finishing the step and enqueuing what
		// follows, so make sure the run's running steps have their tasks.
		w.log.Info("step is not running; nothing to do", "run", ref.RunID, "step", ref.Step, "state", st)
		return wf, step, run, false, w.orch.Resume(ctx, run)
	}
	return wf, step, run, true, nil
}

// failStepOnLastAttempt marks the step FAILED when a task fails for the last
// time (retries exhausted, or a permanent error), so the run ends FAILED and
// the follow-on steps do not start. asynq archives the task itself.
func (w *Worker) failStepOnLastAttempt(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		err := next.ProcessTask(ctx, t)
		if err == nil || errors.Is(ctx.Err(), context.Canceled) {
			return err // success, or shutdown: the task is requeued without counting a retry
		}
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if fault.IsPermanent(err) && !errors.Is(err, asynq.SkipRetry) {
			err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		if retried < maxRetry && !errors.Is(err, asynq.SkipRetry) {
			w.log.Warn("task failed; will retry", "type", t.Type(), "attempt", retried+1, "max_retry", maxRetry, "err", err)
			return err
		}
		ref, derr := tasks.Decode[tasks.StepRef](t)
		if derr != nil || ref.RunID == "" {
			return err
		}
		w.log.Error("task failed for the last time; failing the step", "type", t.Type(), "run", ref.RunID, "step", ref.Step, "err", err)
		// The task's own context may be done (its timeout is what failed it).
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, ferr := w.orch.Finish(fctx, ref, workflow.Failed, nil, fmt.Errorf("%s: %w", t.Type(), err)); ferr != nil {
			w.log.Error("could not record step failure", "run", ref.RunID, "step", ref.Step, "err", ferr)
		}
		return err
	})
}
