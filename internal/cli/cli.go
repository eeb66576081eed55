// Package cli is the scheduler command's subcommands: serve (schedules, the
// console, the API and the monitoring UI), start (a run on demand, or a dry
// run), cancel, retry, pause and resume, runs and show (run history),
// generate (sample data), catalog (the data catalog), preview and validate
// (developing a job), demo (everything embedded, nothing to install),
// replay (a run's task graph on simulated fleets) and version. Errors
// carry an exit code (ExitCode).
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []command{
	{"serve", "fire workflow schedules; serve the console (/console/), the API (/api/v1/), asynqmon (/monitoring/), /metrics", serve},
	{"start", "start a run for a date or a date range now (reprocessing uses this); -dry-run says what it would rebuild", start},
	{"cancel", "cancel a running run", cancelRun},
	{"retry", "take a failed run up again from its failed phase (-allow-shrink past the shrink guard)", retryRun},
	{"pause", "pause a workflow's schedules (runs on demand, running runs and the queues go on)", pauseSchedule(false)},
	{"resume", "let a paused workflow's schedules start runs again", pauseSchedule(true)},
	{"runs", "list recent runs and their states", listRuns},
	{"show", "show one run: every step's state, timing, progress and summary", showRun},
	{"generate", "write sample Segment logs (iOS and Android) to a location", generate},
	{"catalog", "list tables, show one, or print Athena DDL", catalogCmd},
	{"iceberg", "an Iceberg job's table: list its snapshots, roll back a run's commit, expire old snapshots", icebergCmd},
	{"preview", "run a job step on a sample of its real input, in process: columns, schema changes, rows, quarantine, filtered rows; writes nothing", previewCmd},
	{"validate", "check workflow files: every problem with its file, line and column; exit 2 if any", validateCmd},
	{"demo", "run the whole workflow embedded: in-process Redis, local folders, in-process workers", demo},
	{"replay", "predict a job step's time on fleets of any size from one real run (its tasks' seconds, its barriers)", replay},
	{"version", "print the version", version},
}

// Main runs the subcommand named by args[0].
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout)
		}
	}
	usage(os.Stderr)
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	if s := closest(args[0], names); s != "" {
		return usageErr(fmt.Errorf("unknown command %q (did you mean %s?)", args[0], s))
	}
	return usageErr(fmt.Errorf("unknown command %q", args[0]))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: scheduler <command> [flags]   (scheduler <command> -h for its flags)")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
}

// usageLines are the first line of -h for the subcommands that take
// arguments besides flags.
var usageLines = map[string]string{
	"show":   "usage: scheduler show [flags] RUN_ID   (run ids: scheduler runs)",
	"cancel": "usage: scheduler cancel [flags] RUN_ID   (run ids: scheduler runs)",
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("scheduler "+name, flag.ContinueOnError)
	if line, ok := usageLines[name]; ok {
		fs.Usage = func() {
			fmt.Fprintln(fs.Output(), line)
			fs.PrintDefaults()
		}
	}
	return fs
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
