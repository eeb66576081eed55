// Package worker holds the asynq handlers that run workflow steps: a crawl,
// and the plan, map, split, reduce, encode and commit phases of a transform job.
// Handlers translate task payloads into calls to pipeline/crawl and
// pipeline/job, enqueue the work those calls make ready, and report results
// through the orchestrator; the domain packages never see asynq.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/tempspace"
	"sluice/pipeline/fault"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// Worker runs steps. Create it with New and register Mux with an asynq
// server.
type Worker struct {
	orch    *orchestrator.Orchestrator
	log     *slog.Logger
	metrics *Metrics
	mapOpts mapper.Options
	minTask int
	reduce  reduce.Options
	// runCheck is how often a running task checks that its run goes on.
	runCheck time.Duration

	s3      s3store.Options // for Iceberg's own file IO
	mu      sync.Mutex
	buckets map[string]storage.Bucket
	// open opens a location; tests wrap it to inject storage faults.
	open func(ctx context.Context, location string) (storage.Bucket, error)

	// timeline records each task attempt of a run, and its log lines;
	// name is this process in it.
	timeline *redisstore.Timeline
	name     string

	space *tempspace.Space // nil: temporary space is not bounded
}

// Config wires a Worker.
type Config struct {
	Orchestrator *orchestrator.Orchestrator
	S3           s3store.Options
	Log          *slog.Logger
	Metrics      *Metrics // nil: not exported
	// TempDir is the local folder for map and reduce runs and Parquet
	// pages; empty means os.TempDir().
	TempDir string
	// TempSpace, when set, is the worker's own temporary folder (TempDir
	// should be its Dir): every task stops, to be retried, when it grows
	// past its limit.
	TempSpace *tempspace.Space
	// TaskMemory is what one map or reduce task may hold in rows before it
	// sorts them into runs on TempDir (see TaskMemory); zero means the
	// transform's defaults.
	TaskMemory int64
	// RunCheckInterval is how often a running plan, map, split, reduce or
	// encode task checks its run, and stops when the run was cancelled,
	// has ended or is gone from Redis (default 5 s).
	RunCheckInterval time.Duration
	// PlanMinTasks is the fewest tasks a job step's phases are cut into
	// (job.PlanOptions.MinTasks); zero means job.DefaultMinMapTasks.
	PlanMinTasks int
}

func (c *Config) validate() error {
	if c.Orchestrator == nil {
		return errors.New("worker: no orchestrator")
	}
	if c.Log == nil {
		return errors.New("worker: no logger")
	}
	if c.TaskMemory < 0 {
		return fmt.Errorf("worker: task memory %d is negative", c.TaskMemory)
	}
	return nil
}

// TaskMemory divides a worker's memory limit among its concurrent tasks:
// rows get about a third of it (the rest is the Go heap's headroom and the
// Parquet writer's buffers), never less than 16 MiB a task.
func TaskMemory(limit int64, concurrency int) int64 {
	return max(limit/3/int64(max(concurrency, 1)), 16<<20)
}

// New returns a worker.
func New(cfg Config) (*Worker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics(nil, cfg.Orchestrator)
	}
	if cfg.RunCheckInterval <= 0 {
		cfg.RunCheckInterval = 5 * time.Second
	}
	return &Worker{
		orch:     cfg.Orchestrator,
		log:      cfg.Log,
		timeline: cfg.Orchestrator.Timeline(),
		name:     workerName(),
		metrics:  m,
		runCheck: cfg.RunCheckInterval,
		mapOpts:  mapper.Options{TempDir: cfg.TempDir, BufferBytes: cfg.TaskMemory},
		reduce:   reduce.Options{TempDir: cfg.TempDir, MemoryBytes: cfg.TaskMemory},
		minTask:  cfg.PlanMinTasks,
		space:    cfg.TempSpace,
		buckets:  map[string]storage.Bucket{},
		s3:       cfg.S3,
		open: func(ctx context.Context, location string) (storage.Bucket, error) {
			return storeurl.Open(ctx, location, cfg.S3)
		},
	}, nil
}

// Mux routes every task type of package tasks to its handler, behind the
// middleware that records each attempt in its run's timeline, counts it,
// turns a final failure into a FAILED step and stops a task whose run
// ended.
func (w *Worker) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Use(w.recordTask, w.observe, w.failStepOnLastAttempt, w.boundTemp, w.watchRun)
	mux.HandleFunc(tasks.TypeCrawlRun, w.handleCrawlRun)
	mux.Handle(tasks.TypeTransformPlan, jobHandler(w, w.planPhase))
	mux.Handle(tasks.TypeTransformMap, jobHandler(w, mapPhase))
	mux.Handle(tasks.TypeTransformSplit, jobHandler(w, splitPhase))
	mux.Handle(tasks.TypeTransformReduce, jobHandler(w, reducePhase))
	mux.Handle(tasks.TypeTransformEncode, jobHandler(w, encodePhase))
	mux.Handle(tasks.TypeTransformCommit, jobHandler(w, commitPhase))
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
func (w *Worker) activeStep(ctx context.Context, ref tasks.StepRef) (*workflow.Workflow, *workflow.StepSpec, redisstore.Run, bool, error) {
	wf, err := w.orch.Workflow(ref.Workflow)
	if err != nil {
		return nil, nil, redisstore.Run{}, false, fault.Permanent(err)
	}
	step := wf.Step(ref.Step)
	if step == nil {
		return nil, nil, redisstore.Run{}, false, fault.Permanent(fmt.Errorf("workflow %s has no step %q", wf.Name, ref.Step))
	}
	run, err := w.orch.Run(ctx, ref.RunID)
	if errors.Is(err, redisstore.ErrNotFound) {
		return nil, nil, run, false, w.runGone(ref)
	}
	if err != nil {
		return nil, nil, run, false, err
	}
	if st := run.Steps[ref.Step].State; st != workflow.Running {
		// A duplicate or late task of a finished step. Its first delivery
		// may have died between finishing the step and enqueuing what
		// follows, so make sure the run's running steps have their tasks.
		w.logFor(ctx).Info("step is not running; nothing to do", "run", ref.RunID, "step", ref.Step, "state", st)
		markSkipped(ctx)
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
		if errors.Is(err, tempspace.ErrLimit) && retried < maxRetry {
			// Not a failure (see NewServer): retried without counting.
			// asynq archives it all the same on a last attempt (one
			// that follows counted failures), so that one fails the step.
			w.logFor(ctx).Warn("task stopped: temporary space full; will retry", "type", t.Type(), "err", err)
			return err
		}
		if fault.IsPermanent(err) && !errors.Is(err, asynq.SkipRetry) {
			err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		if retried < maxRetry && !errors.Is(err, asynq.SkipRetry) {
			w.logFor(ctx).Warn("task failed; will retry", "type", t.Type(), "attempt", retried+1, "max_retry", maxRetry, "err", err)
			return err
		}
		ref, derr := tasks.Decode[tasks.StepRef](t)
		if derr != nil || ref.RunID == "" || errors.Is(err, redisstore.ErrNotFound) {
			return err // no step to fail: the run is gone (logged by runGone)
		}
		w.logFor(ctx).Error("task failed for the last time; failing the step", "type", t.Type(), "run", ref.RunID, "step", ref.Step, "err", err)
		// The task's own context may be done (its timeout is what failed it).
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		// The step's error says what went wrong; asynq's "skip retry" only
		// said how to retry.
		cause := errors.New(strings.ReplaceAll(fmt.Sprintf("%s: %v", t.Type(), err), ": "+asynq.SkipRetry.Error(), ""))
		if _, ferr := w.orch.Finish(fctx, ref, workflow.Failed, nil, cause); ferr != nil {
			w.log.Error("could not record step failure", "run", ref.RunID, "step", ref.Step, "err", ferr)
		}
		return err
	})
}

// boundTemp runs the task under the temporary space's guard: it does not
// start while the worker's temporary folder is over its limit, and stops
// when the folder grows past it. The error then wraps
// tempspace.ErrLimit, whatever the task made of its cancelled context.
func (w *Worker) boundTemp(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if w.space == nil {
			return next.ProcessTask(ctx, t)
		}
		gctx, release, err := w.space.Guard(ctx)
		if err != nil {
			return err
		}
		defer release()
		err = next.ProcessTask(gctx, t)
		if cause := context.Cause(gctx); err != nil && errors.Is(cause, tempspace.ErrLimit) {
			return fmt.Errorf("%w (the task ended: %v)", cause, err)
		}
		return err
	})
}
