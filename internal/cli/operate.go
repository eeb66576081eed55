package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"sluice/internal/api"
	"sluice/internal/config"
	"sluice/internal/orchestrator"
)

// retryRun takes a failed run up again from its failed phase.
func retryRun(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	var out output
	fs := newFlags("retry")
	common.Register(fs)
	out.register(fs)
	allowShrink := fs.Bool("allow-shrink", false, "let the retried run replace published partitions with far fewer rows than they were built from, or empty them (what to do when the shrink guard failed the run and the smaller input is right)")
	wait := fs.Bool("wait", false, "wait for the run to end, showing progress; exit 1 if it fails or is cancelled")
	waitRetry := fs.Duration("wait-retry", DefaultWaitRetry, "with -wait, how long a failing read of the run is retried before giving up")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := out.validate(); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr(errors.New("usage: scheduler retry [-allow-shrink] [-wait] RUN_ID"))
	}
	return withOrchestrator(ctx, &common, func(orch *orchestrator.Orchestrator, log *slog.Logger) error {
		run, err := orch.Retry(ctx, fs.Arg(0), orchestrator.RetryOptions{By: "scheduler retry", AllowShrink: *allowShrink})
		if err != nil {
			return err
		}
		msgs := stdout
		if out.json() {
			msgs = io.Discard
		}
		fmt.Fprintf(msgs, "run %s is RUNNING again from where it failed (%s)\n", run.ID, strings.Join(run.RunningSteps(), ", "))
		if *wait {
			p := newProgress(os.Stderr)
			run, err = WaitForRun(ctx, orch, run.ID, WaitOptions{Retry: *waitRetry, Log: log, Progress: p.update})
			p.done()
			if err != nil {
				return err
			}
		}
		wf, _ := orch.Workflow(run.Workflow)
		if out.json() {
			return printJSON(stdout, api.RunOf(run, wf, true))
		}
		if *wait {
			printRun(stdout, api.RunOf(run, wf, true), out.verbose)
			if run.State != "SUCCEEDED" {
				return &exitError{code: ExitRunFailed, err: fmt.Errorf("run %s ended %s", run.ID, run.State)}
			}
		}
		return nil
	})
}

// pauseSchedule pauses, or resumes, a workflow's schedules.
func pauseSchedule(resume bool) func(ctx context.Context, args []string, stdout io.Writer) error {
	name := "pause"
	if resume {
		name = "resume"
	}
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		var common config.Common
		fs := newFlags(name)
		common.Register(fs)
		reason := ""
		if !resume {
			fs.StringVar(&reason, "reason", "", "why, for whoever reads the console")
		}
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			if resume {
				return usageErr(errors.New("usage: scheduler resume WORKFLOW"))
			}
			return usageErr(errors.New("usage: scheduler pause [-reason TEXT] WORKFLOW"))
		}
		wf := fs.Arg(0)
		return withOrchestrator(ctx, &common, func(orch *orchestrator.Orchestrator, _ *slog.Logger) error {
			if resume {
				if err := orch.ResumeSchedule(ctx, wf, "scheduler resume"); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "the schedules of %s start runs again from their next fire (fires missed while paused are not made up)\n", wf)
				return nil
			}
			if _, err := orch.PauseSchedule(ctx, wf, "scheduler pause", reason); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "the schedules of %s are paused: they start no runs until `scheduler resume %s` (running runs, the queues and starts on demand go on)\n", wf, wf)
			return nil
		})
	}
}
