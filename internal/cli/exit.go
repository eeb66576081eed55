package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"sluice/internal/buildinfo"
	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
)

// Exit codes of the scheduler command, for scripts and CI.
const (
	ExitOK = 0
	// ExitRunFailed: the run it waited for ended FAILED or CANCELLED.
	ExitRunFailed = 1
	// ExitUsage: bad flags or arguments (an unknown workflow among them),
	// or the request was refused (a window that overlaps an active run,
	// one wider than -max-window-days or reaching past tomorrow, a retry of
	// a run that has not failed or cannot resume).
	ExitUsage = 2
	// ExitError: anything else (Redis or S3 unreachable, …).
	ExitError = 3
)

type exitError struct {
	code int
	err  error
	// reported: the message was printed already (the flag package prints
	// a bad flag with the usage), so main must not print it again.
	reported bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error { return &exitError{code: ExitUsage, err: err} }

// ExitCode is the exit code for an error Main returned (0 for nil and
// for -h).
func ExitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	if errors.Is(err, redisstore.ErrOverlap) || errors.Is(err, orchestrator.ErrUnknownWorkflow) || errors.Is(err, orchestrator.ErrBadWindow) ||
		errors.Is(err, redisstore.ErrNotFailed) || errors.Is(err, orchestrator.ErrNotResumable) {
		return ExitUsage
	}
	return ExitError
}

// Reported says whether err's message was printed already (a bad flag,
// which the flag package prints with the usage): main prints the others.
func Reported(err error) bool {
	e, ok := errors.AsType[*exitError](err)
	return ok && e.reported
}

// parse reads a subcommand's flags; a bad flag is a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	err := config.Parse(fs, args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	// The flag package printed a flag it could not parse, with the
	// usage; an environment variable's error it did not.
	return &exitError{code: ExitUsage, err: err, reported: !strings.Contains(err.Error(), "environment variable")}
}

func version(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("version")
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "scheduler", Version())
	return nil
}

// Version describes the build: the module version (or the VCS revision
// and time of a build from a checkout) and the Go version.
func Version() string { return buildinfo.Read().String() }
