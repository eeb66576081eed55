package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"sluice/internal/api"
	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/worker"
	"sluice/pipeline/catalog"
	"sluice/pipeline/civil"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
	"sluice/tasks"
	"sluice/workflows"
)

// demo runs the example workflow with nothing installed: miniredis in
// process, local folders as the stores, workers in process.
func demo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("demo")
	dir := fs.String("dir", "sluice-demo", "folder for the raw logs, the output table, the catalog and scratch")
	workflowFile := fs.String("workflow", "", "workflow file to run (default: the embedded mobile-user example)")
	concurrency := fs.Int("concurrency", runtime.GOMAXPROCS(0), "in-process workers")
	verbose := fs.Bool("v", false, "print every detail: each task's log, full step summaries, every table's columns")
	force := fs.Bool("force", false, "rebuild every partition, even those whose input is unchanged since the last demo")
	if err := parse(fs, args); err != nil {
		return err
	}
	began := time.Now()
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	locs := map[string]string{
		"SLUICE_RAW":     "file://" + filepath.Join(abs, "raw"),
		"SLUICE_OUTPUT":  "file://" + filepath.Join(abs, "mobile_user"),
		"SLUICE_CATALOG": "file://" + filepath.Join(abs, "catalog"),
		"SLUICE_SCRATCH": "file://" + filepath.Join(abs, "scratch"),
	}
	// The workflow file refers to the locations as ${SLUICE_…}.
	lookup := func(k string) (string, bool) {
		if v, ok := locs[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	raw := workflows.MobileUser
	if *workflowFile != "" {
		if raw, err = os.ReadFile(*workflowFile); err != nil {
			return err
		}
	}
	wf, err := workflow.ParseWith(raw, lookup, transform.ValidateJob)
	if err != nil {
		return fmt.Errorf("workflow: %w", err)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// Sample data, unless the raw folder already holds some.
	rawBucket, err := storeurl.Open(ctx, locs["SLUICE_RAW"], config.Common{}.S3)
	if err != nil {
		return err
	}
	gen := segmentgen.DefaultConfig()
	win := civil.Window{Start: civil.DateOf(gen.Start), End: civil.DateOf(gen.Start).AddDays(gen.Days - 1)}
	if empty, err := isEmpty(ctx, rawBucket); err != nil {
		return err
	} else if empty {
		fmt.Fprintf(stdout, "generating sample Segment logs in %s …\n", rawBucket.Location())
		t0 := time.Now()
		sum, err := segmentgen.Generate(ctx, rawBucket, gen)
		if err != nil {
			return err
		}
		printGenerated(stdout, rawBucket.Location(), sum, time.Since(t0))
	} else {
		fmt.Fprintf(stdout, "using the sample logs already in %s (delete %s to start afresh)\n", rawBucket.Location(), abs)
	}

	// Embedded Redis. Sluice's keys carry TTLs that miniredis only advances
	// when told to; a demo run ends long before any of them matter.
	mr, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("embedded redis: %w", err)
	}
	defer mr.Close()
	redisOpt := asynq.RedisClientOpt{Addr: mr.Addr()}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: map[string]*workflow.Workflow{wf.Name: wf}, Redis: redisOpt, Log: log})
	if err != nil {
		return err
	}
	defer orch.Close()
	w, err := worker.New(worker.Config{Orchestrator: orch, Log: log})
	if err != nil {
		return err
	}
	srv := worker.NewServer(redisOpt, worker.ServerConfig{
		Concurrency: *concurrency, Queues: map[string]int{tasks.QueueCrawl: 2, tasks.QueueTransform: 6},
		TaskCheckInterval: 20 * time.Millisecond, RetryDelay: time.Second, ShutdownTimeout: 2 * time.Second,
	}, log)
	if err := srv.Start(w.Mux()); err != nil {
		return err
	}
	defer srv.Shutdown()

	fmt.Fprintf(stdout, "running workflow %s for %s with %d in-process workers …\n", wf.Name, win, *concurrency)
	st, err := orch.Start(ctx, wf.Name, win, redisstore.StartOptions{Trigger: "demo", Force: *force})
	if err != nil {
		return err
	}
	run, err := WaitForRun(ctx, orch, st.Run.ID, WaitOptions{Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	// The run lives in the embedded Redis, gone when the demo ends: every
	// detail is the demo's -v, not scheduler show.
	printRunHint(stdout, api.RunOf(run, wf, true), *verbose, "scheduler demo -v")
	if run.State != workflow.Succeeded {
		return &exitError{code: ExitRunFailed, err: fmt.Errorf("run %s ended %s", run.ID, run.State)}
	}

	catBucket, err := storeurl.Open(ctx, wf.Catalog, config.Common{}.S3)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\ncatalog tables:")
	var tables bytes.Buffer
	if err := printCatalog(ctx, &tables, catalog.New(catBucket), !*verbose); err != nil {
		return err
	}
	fmt.Fprint(stdout, indent(tables.String(), "  ")+"\n")
	if err := printPartitions(ctx, stdout, catalog.New(catBucket), wf); err != nil {
		return err
	}
	table := filepath.Join(abs, "mobile_user")
	fmt.Fprintf(stdout, "\nfiles: raw logs in %s, table in %s, catalog in %s\n", filepath.Join(abs, "raw"), table, filepath.Join(abs, "catalog"))
	fmt.Fprintf(stdout, "demo finished in %s\n", time.Since(began).Round(time.Millisecond))
	fmt.Fprintf(stdout, `
next (every other command reads the demo's folders after: export SLUICE_RAW=%s SLUICE_OUTPUT=%s SLUICE_CATALOG=%s SLUICE_SCRATCH=%s):
  query the table:    duckdb -c "SELECT date, event, count(*) FROM read_parquet('%s/**/*.parquet', hive_partitioning=true) GROUP BY ALL ORDER BY ALL"
  see the schema:     go run ./cmd/scheduler catalog show segmentlogs.mobile
  change the job:     edit workflows/mobile-user.yaml, then go run ./cmd/scheduler validate and go run ./cmd/scheduler preview -start %s
  open the console:   redis-server & go run ./cmd/scheduler serve, then http://localhost:8080/console/ (README: Running it for real)
  every detail:       go run ./cmd/scheduler demo -v
`, locs["SLUICE_RAW"], locs["SLUICE_OUTPUT"], locs["SLUICE_CATALOG"], locs["SLUICE_SCRATCH"], table, win.Start.AddDays(1))
	return nil
}

// printPartitions prints the partitions of the table the workflow's last
// crawler catalogs (the output table), with their files and rows.
func printPartitions(ctx context.Context, w io.Writer, store *catalog.Store, wf *workflow.Workflow) error {
	var last *workflow.CrawlerSpec
	for _, s := range wf.Steps {
		if s.Crawler != nil {
			last = s.Crawler
		}
	}
	if last == nil {
		return nil
	}
	t, err := store.GetTable(ctx, last.Database, last.Table)
	if err != nil {
		return err
	}
	parts, err := store.ListPartitions(ctx, last.Database, last.Table)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s.%s partitions:\n", last.Database, last.Table)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PARTITION\tFILES\tROWS")
	for _, p := range parts {
		fmt.Fprintf(tw, "  %s\t%d\t%d\n", strings.Trim(strings.TrimPrefix(p.Location, t.Location), "/"), p.Files, p.Rows)
	}
	return tw.Flush()
}

var errStop = errors.New("stop")

func isEmpty(ctx context.Context, b storage.Reader) (bool, error) {
	err := b.List(ctx, "", func(storage.ObjectInfo) error { return errStop })
	if errors.Is(err, errStop) {
		return false, nil
	}
	return err == nil, err
}
