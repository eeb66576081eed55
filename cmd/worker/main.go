// Command worker runs Sluice's workflow steps: an asynq server that takes
// crawl and transform tasks from Redis. Run as many as the work needs; each
// SIGTERM stops taking work and hands unfinished tasks back to the queue.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/worker"
	"sluice/pipeline/runstore"
	"sluice/tasks"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	var common config.Common
	fs := flag.NewFlagSet("worker", flag.ExitOnError)
	common.Register(fs)
	concurrency := fs.Int("concurrency", runtime.GOMAXPROCS(0), "tasks run at once by this process (env SLUICE_CONCURRENCY)")
	queues := fs.String("queues", config.Env("SLUICE_QUEUES", worker.DefaultQueues()), "queues and their weights (env SLUICE_QUEUES)")
	httpAddr := fs.String("http", config.Env("SLUICE_WORKER_HTTP", ":9091"), "address for /metrics and /healthz; empty: none (env SLUICE_WORKER_HTTP)")
	shutdown := fs.Duration("shutdown-timeout", 8*time.Second, "on SIGTERM, how long running tasks get to finish before they are handed back")
	checkEvery := fs.Duration("task-check-interval", time.Second, "how often an idle worker polls the queues")
	retryDelay := fs.Duration("retry-delay", 0, "delay before a failed task's first retry, doubling after; 0 keeps asynq's default (15 s and up)")
	tempDir := fs.String("temp-dir", config.Env("SLUICE_TEMP_DIR", os.TempDir()), "local folder for all temporary files: map intermediates before upload, reduce spills, S3 upload spools (env SLUICE_TEMP_DIR)")
	memLimit := fs.String("memory-limit", config.Env("SLUICE_MEMORY_LIMIT", "192MiB"), "soft limit of the process's memory (Go's GOMEMLIMIT, which wins when set); map and reduce tasks hold a third of it in rows and sort the rest in runs on -temp-dir (env SLUICE_MEMORY_LIMIT)")
	_ = fs.Parse(os.Args[1:])
	if v := config.Env("SLUICE_CONCURRENCY", ""); v != "" && !isSet(fs, "concurrency") {
		if _, err := fmt.Sscan(v, concurrency); err != nil {
			return fmt.Errorf("SLUICE_CONCURRENCY: %q is not a number", v)
		}
	}
	if *concurrency < 1 {
		return fmt.Errorf("-concurrency (SLUICE_CONCURRENCY): must be at least 1, got %d", *concurrency)
	}
	limit, err := humanize.ParseBytes(*memLimit)
	if err != nil || limit < 64<<20 {
		return fmt.Errorf("-memory-limit (SLUICE_MEMORY_LIMIT): %q is not a size of at least 64MiB", *memLimit)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(limit))
	} else {
		limit = uint64(debug.SetMemoryLimit(-1))
	}
	if os.Getenv("GOGC") == "" {
		// With the heap bounded by the memory limit, collecting at twice
		// rather than at 100% growth costs less CPU (measured: +12% job
		// throughput on one core, peak RSS still under 450 MiB; see
		// docs/BENCHMARKS.md).
		debug.SetGCPercent(200)
	}
	qs, err := worker.ParseQueues(*queues)
	if err != nil {
		return fmt.Errorf("-queues (SLUICE_QUEUES): %w", err)
	}
	log, err := common.Logger()
	if err != nil {
		return err
	}
	wfs, err := common.LoadWorkflows()
	if err != nil {
		return err
	}
	redisOpt, rdb, err := common.Redis()
	if err != nil {
		return err
	}
	defer rdb.Close()
	client := asynq.NewClient(redisOpt)
	defer client.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	orch := &orchestrator.Orchestrator{Workflows: wfs, Runs: runstore.New(rdb), Client: client, Options: tasks.DefaultOptions, Log: log}
	common.S3.TempDir = *tempDir
	// Map tasks and other libraries create their temporary files in the
	// default temp folder; point it at -temp-dir too, so one flag decides
	// which disk takes them.
	if err := os.Setenv("TMPDIR", *tempDir); err != nil {
		return err
	}
	inspector := asynq.NewInspector(redisOpt)
	defer inspector.Close()
	w := worker.New(worker.Config{
		Orchestrator: orch, S3: common.S3, Log: log, Metrics: worker.NewMetrics(reg),
		TempDir: *tempDir, TaskMemory: worker.TaskMemory(int64(limit), *concurrency),
		Fleet: worker.FleetSlots(inspector),
	})

	if *httpAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		// CPU and heap profiles of a live worker, for finding where a slow
		// job's time goes (go tool pprof http://worker:9091/debug/pprof/profile).
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		srv := &http.Server{Addr: *httpAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server stopped", "err", err)
			}
		}()
		defer srv.Close()
	}

	srv := worker.NewServer(redisOpt, worker.ServerConfig{Concurrency: *concurrency, Queues: qs, ShutdownTimeout: *shutdown, TaskCheckInterval: *checkEvery, RetryDelay: *retryDelay}, log)
	if err := srv.Start(w.Mux()); err != nil {
		return fmt.Errorf("start asynq server: %w", err)
	}
	log.Info("worker started", "concurrency", *concurrency, "queues", qs, "workflows", len(wfs), "pid", os.Getpid(),
		"memory_limit", humanize.IBytes(limit), "task_memory", humanize.IBytes(uint64(worker.TaskMemory(int64(limit), *concurrency))))
	<-ctx.Done()
	log.Info("worker stopping: no new tasks; running ones get the shutdown timeout", "shutdown_timeout", *shutdown)
	srv.Shutdown()
	log.Info("worker stopped")
	return nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
