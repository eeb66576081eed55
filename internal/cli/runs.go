package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"text/tabwriter"
	"time"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/scheduler"
	"sluice/pipeline/civil"
	"sluice/pipeline/workflow"
)

// withOrchestrator runs fn with an orchestrator over the common settings:
// the one place the Redis-backed subcommands connect (checking that Redis
// answers) and disconnect.
func withOrchestrator(ctx context.Context, common *config.Common, fn func(*orchestrator.Orchestrator, *slog.Logger) error) error {
	if err := common.Validate(); err != nil {
		return err
	}
	log, err := common.Logger()
	if err != nil {
		return err
	}
	wfs, err := common.LoadWorkflows()
	if err != nil {
		return err
	}
	opt, err := common.ConnectRedis(ctx)
	if err != nil {
		return err
	}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: opt, Log: log})
	if err != nil {
		return err
	}
	defer orch.Close()
	return fn(orch, log)
}

func serve(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("serve")
	common.Register(fs)
	addr := fs.String("http", ":8080", "address of the monitoring UI (/monitoring/), /metrics, /runs and the probes /livez, /readyz, /healthz")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	return withOrchestrator(ctx, &common, func(orch *orchestrator.Orchestrator, log *slog.Logger) error {
		redisOpt, _ := common.Redis()
		srv := &http.Server{Addr: *addr, Handler: scheduler.Handler(redisOpt, orch), ReadHeaderTimeout: 10 * time.Second}
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		log.Info("scheduler serving", "http", *addr, "monitoring", "/monitoring/", "workflows", orch.Workflows())
		sched, err := scheduler.New(scheduler.Config{Orchestrator: orch, Log: log})
		if err != nil {
			return err
		}
		if err := sched.Start(ctx); err != nil {
			return err
		}
		defer sched.Stop()
		select {
		case <-ctx.Done():
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("-http %s: %w", *addr, err)
			}
		}
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
}

func start(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("start")
	common.Register(fs)
	name := fs.String("workflow", "mobile-user", "workflow to run")
	from := fs.String("start", "", "first date of the window, YYYY-MM-DD (required)")
	to := fs.String("end", "", "last date of the window, YYYY-MM-DD (default: -start)")
	wait := fs.Bool("wait", false, "wait for the run to end, printing progress; exit 1 if it fails")
	waitRetry := fs.Duration("wait-retry", DefaultWaitRetry, "with -wait, how long a failing read of the run (Redis restarting, a failover) is retried, with backoff, before giving up; 0: not at all")
	force := fs.Bool("force", false, "rebuild every partition of the window, even those whose input is unchanged since their last build")
	allowShrink := fs.Bool("allow-shrink", false, "let the run replace published partitions with far fewer rows than they were built from, or empty them (refused otherwise: it is what a wrong input location looks like)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *from == "" {
		return errors.New("-start: a date is required, e.g. -start 2026-10-30")
	}
	win, err := civil.ParseWindow(*from, *to)
	if err != nil {
		return fmt.Errorf("-start/-end: %w", err)
	}
	if *waitRetry < 0 {
		return fmt.Errorf("-wait-retry (%s): %s must not be negative", config.EnvVar("wait-retry"), *waitRetry)
	}
	return withOrchestrator(ctx, &common, func(orch *orchestrator.Orchestrator, log *slog.Logger) error {
		var w *WaitOptions
		if *wait {
			w = &WaitOptions{Retry: *waitRetry, Log: log}
		}
		return startRun(ctx, orch, stdout, *name, win, *force, *allowShrink, w)
	})
}

// startRun starts a run and, when wait is not nil, waits for it to end.
func startRun(ctx context.Context, orch *orchestrator.Orchestrator, stdout io.Writer, name string, win civil.Window, force, allowShrink bool, wait *WaitOptions) error {
	st, err := orch.Start(ctx, name, win, redisstore.StartOptions{Trigger: "on-demand", Force: force, AllowShrink: allowShrink})
	if err != nil {
		return err
	}
	if st.Created {
		fmt.Fprintf(stdout, "started run %s (%s %s)\n", st.Run.ID, name, win)
	} else {
		fmt.Fprintf(stdout, "run %s of %s %s is already active; not starting another\n", st.Run.ID, name, win)
		if force && !st.Run.Force {
			fmt.Fprintln(stdout, "note: that run does not rebuild unchanged partitions; start again with -force once it has ended")
		}
	}
	if wait == nil {
		return nil
	}
	wait.Progress = func(r redisstore.Run) { fmt.Fprintln(stdout, progressLine(r)) }
	run, err := WaitForRun(ctx, orch, st.Run.ID, *wait)
	if err != nil {
		return err
	}
	if wf, err := orch.Workflow(run.Workflow); err == nil {
		printRunSteps(stdout, run, wf)
	}
	if run.State != workflow.Succeeded {
		return fmt.Errorf("run %s ended %s", run.ID, run.State)
	}
	return nil
}

// WaitOptions tune WaitForRun.
type WaitOptions struct {
	// Retry is how long a failing read of the run is retried (readRun).
	Retry time.Duration
	// Log gets a line for each retry.
	Log *slog.Logger
	// Progress, when set, is called when the run's progress line changes.
	Progress func(redisstore.Run)
}

// WaitForRun polls a run until it ends, calling opts.Progress when it
// changes.
func WaitForRun(ctx context.Context, orch *orchestrator.Orchestrator, id string, opts WaitOptions) (redisstore.Run, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		run, err := readRun(ctx, orch, id, opts.Retry, opts.Log)
		if err != nil {
			return run, err
		}
		if line := progressLine(run); line != last && opts.Progress != nil {
			opts.Progress(run)
			last = line
		}
		if run.State != workflow.Running {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-tick.C:
		}
	}
}

func progressLine(r redisstore.Run) string {
	line := fmt.Sprintf("%s %s", r.ID, r.State)
	for _, name := range sortedKeys(r.Steps) {
		if s := r.Steps[name]; s.State == workflow.Running {
			line += fmt.Sprintf("  %s RUNNING %s", name, s.Progress)
		}
	}
	return line
}

func listRuns(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("runs")
	common.Register(fs)
	limit := fs.Int("limit", 20, "runs per workflow")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	return withOrchestrator(ctx, &common, func(orch *orchestrator.Orchestrator, _ *slog.Logger) error {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tWORKFLOW\tWINDOW\tSTATE\tTRIGGER\tCREATED\tDURATION")
		for _, name := range orch.Workflows() {
			runs, err := orch.Runs(ctx, name, *limit)
			if err != nil {
				return err
			}
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workflow, r.Window, r.State, r.Trigger, r.Created.Format(time.RFC3339), duration(r))
			}
		}
		return tw.Flush()
	})
}

func duration(r redisstore.Run) string {
	end := r.Ended
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(r.Created).Round(100 * time.Millisecond).String()
}

func showRun(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("show")
	common.Register(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: scheduler show RUN_ID")
	}
	return withOrchestrator(ctx, &common, func(orch *orchestrator.Orchestrator, _ *slog.Logger) error {
		run, err := orch.Run(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		wf, err := orch.Workflow(run.Workflow)
		if err != nil {
			return err
		}
		printRunSteps(stdout, run, wf)
		return nil
	})
}

func printRun(w io.Writer, run redisstore.Run) {
	fmt.Fprintf(w, "run %s: %s, window %s, %s\n", run.ID, run.State, run.Window, duration(run))
}

// printRunSteps prints a run with its steps in workflow order.
func printRunSteps(w io.Writer, run redisstore.Run, wf *workflow.Workflow) {
	printRun(w, run)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tKIND\tSTATE\tSTARTED\tTOOK\tNOTE")
	for _, s := range wf.Steps {
		rec := run.Steps[s.Name]
		started, took := "", ""
		if !rec.Started.IsZero() {
			started = rec.Started.Format("15:04:05")
			if !rec.Ended.IsZero() {
				took = rec.Ended.Sub(rec.Started).Round(time.Millisecond).String()
			}
		}
		note := rec.Progress
		if rec.Error != "" {
			note = "error: " + rec.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind(), rec.State, started, took, note)
	}
	tw.Flush()
	for _, s := range wf.Steps {
		if rec := run.Steps[s.Name]; len(rec.Summary) > 0 {
			var pretty map[string]any
			_ = json.Unmarshal(rec.Summary, &pretty)
			b, _ := json.MarshalIndent(pretty, "", "  ")
			fmt.Fprintf(w, "\n%s summary:\n%s\n", s.Name, indent(string(b), "  "))
		}
	}
}
