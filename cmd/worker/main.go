// Command worker runs Sluice's workflow steps: an asynq server that takes
// crawl and transform tasks from Redis. Run as many as the work needs; each
// SIGTERM stops taking work and hands unfinished tasks back to the queue.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sluice/internal/cli"
	"sluice/internal/config"
	"sluice/internal/health"
	"sluice/internal/orchestrator"
	"sluice/internal/tempspace"
	"sluice/internal/worker"
)

func main() {
	err := run(os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 1 && (args[0] == "version" || args[0] == "-version" || args[0] == "--version") {
		fmt.Fprintln(stdout, "worker", cli.Version())
		return nil
	}
	var cfg config.Worker
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	cfg.Register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: worker [flags]   (worker version: the build)")
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	limit := cfg.MemoryLimit
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	} else {
		limit = debug.SetMemoryLimit(-1)
	}
	if os.Getenv("GOGC") == "" {
		// With the heap bounded by the memory limit, collecting at twice
		// rather than at 100% growth costs less CPU (measured: +12% job
		// throughput on one core; see docs/BENCHMARKS.md).
		debug.SetGCPercent(200)
	}
	log, err := cfg.Logger()
	if err != nil {
		return err
	}
	wfs, err := cfg.LoadWorkflows()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	redisOpt, err := cfg.ConnectRedis(ctx)
	if err != nil {
		return err
	}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: redisOpt, Log: log, MaxWindowDays: cfg.MaxWindowDays})
	if err != nil {
		return err
	}
	defer orch.Close()

	// A folder of this process's own under -temp-dir, after removing those
	// of workers that died (SIGKILL, OOM, a restarted container).
	space, reclaimed, err := tempspace.Claim(cfg.TempDir, cfg.TempLimit)
	if err != nil {
		return fmt.Errorf("-temp-dir (SLUICE_TEMP_DIR): %w", err)
	}
	defer space.Close()
	if reclaimed.Folders+reclaimed.Files > 0 {
		log.Warn("removed the temporary files of workers that died", "temp_dir", cfg.TempDir, "folders", reclaimed.Folders, "files", reclaimed.Files,
			"bytes", humanize.IBytes(uint64(reclaimed.Bytes)))
	}
	if space.Limit() > 0 {
		go space.Watch(ctx, time.Second, log)
	}

	reg := prometheus.NewRegistry()
	cfg.S3.TempDir = space.Dir
	cfg.S3.Log = log
	taskMemory := worker.TaskMemory(limit, cfg.Concurrency)
	w, err := worker.New(worker.Config{
		Orchestrator: orch, S3: cfg.S3, Log: log, Metrics: worker.NewMetrics(reg, orch),
		TempDir: space.Dir, TempSpace: space, TaskMemory: taskMemory, RunCheckInterval: cfg.RunCheckInterval, PlanMinTasks: cfg.PlanMinTasks,
	})
	if err != nil {
		return err
	}

	if cfg.HTTP != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		health.Register(mux, redisOpt)
		// CPU and heap profiles of a live worker, for finding where a slow
		// job's time goes (go tool pprof http://worker:9091/debug/pprof/profile).
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		srv := &http.Server{Addr: cfg.HTTP, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server stopped", "err", err)
			}
		}()
		defer srv.Close()
	}

	srv := worker.NewServer(redisOpt, worker.ServerConfig{Concurrency: cfg.Concurrency, Queues: cfg.Queues, ShutdownTimeout: cfg.ShutdownTimeout,
		TaskCheckInterval: cfg.TaskCheckInterval, RetryDelay: cfg.RetryDelay}, log)
	if err := srv.Start(w.Mux()); err != nil {
		return fmt.Errorf("start asynq server: %w", err)
	}
	log.Info("worker started", "temp_dir", space.Dir, "concurrency", cfg.Concurrency, "queues", cfg.Queues, "workflows", len(wfs), "pid", os.Getpid(),
		"memory_limit", humanize.IBytes(uint64(limit)), "task_memory", humanize.IBytes(uint64(taskMemory)))
	<-ctx.Done()
	log.Info("worker stopping: no new tasks; running ones get the shutdown timeout", "shutdown_timeout", cfg.ShutdownTimeout)
	srv.Shutdown()
	log.Info("worker stopped")
	return nil
}
