package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"sluice/internal/access"
	"sluice/internal/api"
	"sluice/internal/config"
	"sluice/internal/notify"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/scheduler"
	"sluice/pipeline/civil"
	"sluice/pipeline/icetable"
	"sluice/pipeline/job"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/workflow"
)

// withOrchestrator runs fn with an orchestrator over the common settings:
// the one place the Redis-backed subcommands connect (checking that Redis
// answers) and disconnect.
func withOrchestrator(ctx context.Context, common *config.Common, fn func(*orchestrator.Orchestrator, *slog.Logger) error) error {
	return connect(ctx, common, false, fn)
}

// withHistory is withOrchestrator for the commands that only read run
// history (runs, show): they work without workflow files (outside the
// repository), reading what the runs recorded.
func withHistory(ctx context.Context, common *config.Common, fn func(*orchestrator.Orchestrator, *slog.Logger) error) error {
	return connect(ctx, common, true, fn)
}

func connect(ctx context.Context, common *config.Common, historyOnly bool, fn func(*orchestrator.Orchestrator, *slog.Logger) error) error {
	if err := common.Validate(); err != nil {
		return usageErr(err)
	}
	log, err := common.Logger()
	if err != nil {
		return usageErr(err)
	}
	wfs, err := common.LoadWorkflows()
	if historyOnly && errors.Is(err, fs.ErrNotExist) {
		log.Debug("no workflow files; reading run history alone", "workflows", common.Workflows)
		wfs, err = nil, nil
	}
	if err != nil {
		return usageErr(err)
	}
	// Redis not answering is not a usage error: exit 3, as the docs say.
	opt, err := common.ConnectRedis(ctx)
	if err != nil {
		return err
	}
	s3 := common.S3
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: opt, Log: log, MaxWindowDays: common.MaxWindowDays, HistoryOnly: historyOnly,
		Open: func(ctx context.Context, loc string) (storage.Bucket, error) { return storeurl.Open(ctx, loc, s3) }})
	if err != nil {
		return usageErr(err)
	}
	defer orch.Close()
	return fn(orch, log)
}

// serveFlags are the settings of `scheduler serve` beside the common ones.
type serveFlags struct {
	addr               string
	token, tokenFile   string
	authReads          bool
	monitoringWritable bool
	prometheus         string
	notifyURL          string
	notifyFormat       string
	notifySucceeded    bool
	consoleURL         string
	sweepEvery         time.Duration
	leftoverAge        time.Duration
	keepFailedScratch  bool
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "http", ":8080", "address of the console (/console/), the API (/api/v1/), asynqmon (/monitoring/), /metrics and the probes /livez, /readyz, /healthz; the default listens on every interface: reads are open to whoever reaches it unless -api-auth-reads, writes need the API token")
	fs.StringVar(&f.token, "api-token", "", "the API token that starting, cancelling and retrying runs, pausing and resuming schedules (and asynqmon's actions) need; prefer SLUICE_API_TOKEN or -api-token-file to this flag, which other users of the machine can see. Empty: writes are refused")
	fs.StringVar(&f.tokenFile, "api-token-file", "", "a file holding the API token (a mounted secret), instead of -api-token")
	fs.BoolVar(&f.authReads, "api-auth-reads", false, "also require the API token to read: the console, the API's GETs, asynqmon")
	fs.BoolVar(&f.monitoringWritable, "monitoring-writable", false, "let asynqmon's actions (run, delete, archive tasks, pause queues) through, with the API token; read-only otherwise")
	fs.StringVar(&f.prometheus, "prometheus-address", "", "Prometheus server asynqmon queries for its queue charts, e.g. http://prometheus:9090")
	fs.StringVar(&f.notifyURL, "notify-url", "", "webhook URL(s), comma-separated, POSTed when a run ends FAILED or CANCELLED (a secret for Slack: prefer SLUICE_NOTIFY_URL)")
	fs.StringVar(&f.notifyFormat, "notify-format", "json", "webhook body: json, or slack (a Slack-compatible incoming-webhook message)")
	fs.BoolVar(&f.notifySucceeded, "notify-succeeded", false, "also notify runs that SUCCEEDED")
	fs.DurationVar(&f.sweepEvery, "sweep-every", 30*time.Second, "how often asynq's archive is swept for tasks that used up their retries unseen, and the scratch for runs that will not resume")
	fs.DurationVar(&f.leftoverAge, "leftover-age", scheduler.DefaultLeftoverAge, "how old a temporary file an interrupted write left in a job's folders (a worker killed mid-write) must be before the sweep removes it; longer than any single write takes")
	fs.BoolVar(&f.keepFailedScratch, "keep-failed-scratch", false, "keep the scratch of failed runs for inspection; by default the sweep removes it once the run can no longer be retried (asynq's task retention)")
	fs.StringVar(&f.consoleURL, "console-url", "", "the console's address as people reach it, for links in notices (default http://<host name><-http>)")
}

// apiToken reads the token from -api-token or -api-token-file.
func (f *serveFlags) apiToken() (string, error) {
	token := f.token
	if f.tokenFile != "" {
		if token != "" {
			return "", errors.New("-api-token (SLUICE_API_TOKEN) and -api-token-file (SLUICE_API_TOKEN_FILE): give one")
		}
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", fmt.Errorf("-api-token-file (SLUICE_API_TOKEN_FILE): %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token != "" && len(token) < 16 {
		return "", errors.New("-api-token (SLUICE_API_TOKEN): the token is shorter than 16 characters; use e.g. `openssl rand -hex 32`")
	}
	return token, nil
}

func (f *serveFlags) console() string {
	if f.consoleURL != "" {
		return strings.TrimSuffix(f.consoleURL, "/")
	}
	host, port, _ := strings.Cut(f.addr, ":")
	if host == "" {
		host, _ = os.Hostname()
	}
	return "http://" + host + ":" + port
}

func serve(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	var f serveFlags
	fs := newFlags("serve")
	common.Register(fs)
	f.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	token, err := f.apiToken()
	if err != nil {
		return usageErr(err)
	}
	if f.leftoverAge <= 0 {
		return usageErr(fmt.Errorf("-leftover-age (SLUICE_LEFTOVER_AGE): must be positive, got %s", f.leftoverAge))
	}
	if f.authReads && token == "" {
		return usageErr(errors.New("-api-auth-reads (SLUICE_API_AUTH_READS): needs an API token (SLUICE_API_TOKEN or -api-token-file)"))
	}
	return withOrchestrator(ctx, &common, func(orch *orchestrator.Orchestrator, log *slog.Logger) error {
		var notifier scheduler.Notifier
		if f.notifyURL != "" {
			n, err := notify.New(notify.Config{URLs: strings.Split(f.notifyURL, ","), Format: f.notifyFormat, OnSuccess: f.notifySucceeded,
				ConsoleURL: f.console(), Log: log}, orch)
			if err != nil {
				return usageErr(err)
			}
			notifier = n
		}
		planner := newPlanner(orch, common.S3, log)
		redisOpt, _ := common.Redis()
		guard := access.New(access.Config{Token: token, ReadsNeedToken: f.authReads, Sessions: orch.Sessions()})
		h, err := scheduler.Handler(redisOpt, orch, scheduler.HTTPOptions{
			Service: &api.Service{Orch: orch, Planner: planner, Log: log,
				Open: func(ctx context.Context, loc string) (storage.Bucket, error) {
					return storeurl.Open(ctx, loc, common.S3)
				}},
			Guard:              guard,
			MonitoringWritable: f.monitoringWritable, PrometheusAddress: f.prometheus,
		})
		if err != nil {
			return err
		}
		// Every request an outsider can send is bounded in time: its
		// headers, its body, and the answer (a dry run, the slowest, stops
		// after a minute); idle connections close.
		srv := &http.Server{Addr: f.addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		log.Info("scheduler serving", "http", f.addr, "console", "/console/", "api", "/api/v1/", "monitoring", "/monitoring/",
			"writes", guard.WritesEnabled(), "reads_need_token", f.authReads, "monitoring_writable", f.monitoringWritable,
			"notify", notifier != nil, "workflows", orch.Workflows())
		// Where each workflow reads and writes: what an empty console or
		// catalog is to be checked against (the defaults are ./sluice-data).
		for _, name := range orch.Workflows() {
			wf, _ := orch.Workflow(name)
			var jobs []string
			for _, st := range wf.Steps {
				if st.Job != nil {
					jobs = append(jobs, st.Name+": "+storage.CanonicalLocation(st.Job.Input)+" -> "+storage.CanonicalLocation(st.Job.Output))
				}
			}
			log.Info("workflow", "name", name, "catalog", storage.CanonicalLocation(wf.Catalog), "jobs", jobs, "redis", config.RedactURL(common.RedisURL))
		}
		sched, err := scheduler.New(scheduler.Config{Orchestrator: orch, Log: log, Notifier: notifier, SweepEvery: f.sweepEvery,
			Scratch: orchestrator.ScratchOptions{KeepFailed: f.keepFailedScratch}, LeftoverAge: f.leftoverAge})
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
				return fmt.Errorf("-http %s: %w", f.addr, err)
			}
		}
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
}

// output is the -o and -v settings of the commands that print runs.
type output struct {
	format  string
	verbose bool
}

func (o *output) register(fs *flag.FlagSet) {
	fs.StringVar(&o.format, "o", "text", "output: text, or json (the API's JSON, for scripts)")
	fs.BoolVar(&o.verbose, "v", false, "print every detail (full step summaries)")
}

func (o *output) validate() error {
	if o.format != "text" && o.format != "json" {
		return usageErr(fmt.Errorf("-o: %q is not text or json", o.format))
	}
	return nil
}

func (o *output) json() bool { return o.format == "json" }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func start(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	var out output
	fs := newFlags("start")
	common.Register(fs)
	out.register(fs)
	name := fs.String("workflow", "mobile-user", "workflow to run")
	from := fs.String("start", "", "first date of the window, YYYY-MM-DD (required)")
	to := fs.String("end", "", "last date of the window, YYYY-MM-DD (default: -start)")
	wait := fs.Bool("wait", false, "wait for the run to end, showing progress; exit 1 if it fails or is cancelled")
	waitRetry := fs.Duration("wait-retry", DefaultWaitRetry, "with -wait, how long a failing read of the run (Redis restarting, a failover) is retried, with backoff, before giving up; 0: not at all")
	force := fs.Bool("force", false, "rebuild every partition of the window, even those whose input is unchanged since their last build")
	allowShrink := fs.Bool("allow-shrink", false, "let the run replace published partitions with far fewer rows than they were built from, or empty them (refused otherwise: it is what a wrong input location looks like)")
	dryRun := fs.Bool("dry-run", false, "say which partitions the run would rebuild and why, what it would read and how many tasks, and start nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := out.validate(); err != nil {
		return err
	}
	if *from == "" {
		return usageErr(errors.New("-start: a date is required, e.g. -start 2026-10-30"))
	}
	win, err := civil.ParseWindow(*from, *to)
	if err != nil {
		return usageErr(fmt.Errorf("-start/-end: %w", err))
	}
	if *waitRetry < 0 {
		return usageErr(fmt.Errorf("-wait-retry (%s): %s must not be negative", config.EnvVar("wait-retry"), *waitRetry))
	}
	return withOrchestrator(ctx, &common, func(orch *orchestrator.Orchestrator, log *slog.Logger) error {
		if *dryRun {
			svc := &api.Service{Orch: orch, Planner: newPlanner(orch, common.S3, log), Log: log}
			res, err := svc.Start(ctx, api.StartRequest{Workflow: *name, Start: win.Start.String(), End: win.End.String(), Force: *force, DryRun: true})
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(stdout, res.DryRun)
			}
			printDryRun(stdout, res.DryRun)
			return nil
		}
		return startRun(ctx, orch, stdout, *name, win, runOptions{force: *force, allowShrink: *allowShrink, wait: *wait, out: out,
			waitOptions: WaitOptions{Retry: *waitRetry, Log: log}})
	})
}

type runOptions struct {
	force, allowShrink, wait bool
	out                      output
	waitOptions              WaitOptions // with wait: how reads of the run are retried
}

func startRun(ctx context.Context, orch *orchestrator.Orchestrator, stdout io.Writer, name string, win civil.Window, o runOptions) error {
	st, err := orch.Start(ctx, name, win, redisstore.StartOptions{Trigger: "on-demand", By: "scheduler start", Force: o.force, AllowShrink: o.allowShrink})
	if err != nil {
		return err
	}
	msgs := stdout
	if o.out.json() {
		msgs = os.Stderr
	}
	if st.Created {
		fmt.Fprintf(msgs, "started run %s (%s %s)\n", st.Run.ID, name, win)
	} else {
		fmt.Fprintf(msgs, "run %s of %s %s is already active; not starting another\n", st.Run.ID, name, win)
		if o.force && !st.Run.Force {
			fmt.Fprintln(msgs, "note: that run does not rebuild unchanged partitions; start again with -force once it has ended")
		}
	}
	run := st.Run
	if o.wait {
		p := newProgress(os.Stderr)
		w := o.waitOptions
		w.Progress = p.update
		run, err = WaitForRun(ctx, orch, st.Run.ID, w)
		p.done()
		if err != nil {
			return err
		}
	}
	wf, _ := orch.Workflow(run.Workflow)
	if o.out.json() {
		if err := printJSON(stdout, api.RunOf(run, wf, true)); err != nil {
			return err
		}
	} else if o.wait {
		printRun(stdout, api.RunOf(run, wf, true), o.out.verbose)
	}
	if o.wait && run.State != workflow.Succeeded {
		return &exitError{code: ExitRunFailed, err: fmt.Errorf("run %s ended %s", run.ID, run.State)}
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
	for _, name := range slices.Sorted(maps.Keys(r.Steps)) {
		if s := r.Steps[name]; s.State == workflow.Running {
			line += fmt.Sprintf("  %s RUNNING %s", name, s.Progress)
		}
	}
	return line
}

func listRuns(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	var out output
	fs := newFlags("runs")
	common.Register(fs)
	out.register(fs)
	limit := fs.Int("limit", 20, "runs per workflow")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := out.validate(); err != nil {
		return err
	}
	return withHistory(ctx, &common, func(orch *orchestrator.Orchestrator, log *slog.Logger) error {
		n := len(orch.Workflows())
		if n == 0 {
			wfs, err := orch.HistoryWorkflows(ctx)
			if err != nil {
				return err
			}
			n = len(wfs)
		}
		runs, err := (&api.Service{Orch: orch, Log: log}).Runs(ctx, "", *limit*n)
		if err != nil {
			return err
		}
		if out.json() {
			if runs == nil {
				runs = []api.Run{}
			}
			return printJSON(stdout, map[string]any{"runs": runs})
		}
		if len(runs) == 0 {
			fmt.Fprintf(stdout, "no runs in Redis at %s (-redis-url); the demo's runs ended with its embedded Redis\n", config.RedactURL(common.RedisURL))
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tWORKFLOW\tWINDOW\tSTATE\tTRIGGER\tCREATED\tDURATION")
		for _, r := range runs {
			fmt.Fprintf(tw, "%s\t%s\t%s..%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workflow, r.Window.Start, r.Window.End, r.State, r.Trigger,
				r.CreatedAt.Format(time.RFC3339), fmtDuration(r.DurationSeconds))
		}
		return tw.Flush()
	})
}

func showRun(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	var out output
	fs := newFlags("show")
	common.Register(fs)
	out.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := out.validate(); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr(errors.New("usage: scheduler show [-v] [-o json] RUN_ID"))
	}
	return withHistory(ctx, &common, func(orch *orchestrator.Orchestrator, log *slog.Logger) error {
		run, err := (&api.Service{Orch: orch, Log: log}).Run(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		if out.json() {
			return printJSON(stdout, run)
		}
		printRun(stdout, run, out.verbose)
		return nil
	})
}

func cancelRun(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("cancel")
	common.Register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr(errors.New("usage: scheduler cancel RUN_ID"))
	}
	return withOrchestrator(ctx, &common, func(orch *orchestrator.Orchestrator, _ *slog.Logger) error {
		run, err := orch.Cancel(ctx, fs.Arg(0), "cancelled with scheduler cancel")
		if errors.Is(err, orchestrator.ErrNotRunning) {
			return usageErr(err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "run %s %s: its queued tasks are removed, running ones stop at their next check; committed partitions stay\n", run.ID, run.State)
		return nil
	})
}

// newPlanner answers dry runs as the workers would plan the run, for the
// live fleet, opening the job's buckets with the process's S3 settings.
func newPlanner(orch *orchestrator.Orchestrator, s3 s3store.Options, log *slog.Logger) *job.Planner {
	open := func(ctx context.Context, loc string) (storage.Bucket, error) { return storeurl.Open(ctx, loc, s3) }
	return &job.Planner{Workflow: orch.Workflow, Slots: orch.FleetSlots, Builder: job.Builder{Open: open, TableIO: icetable.IOProperties(s3)}, Log: log}
}
