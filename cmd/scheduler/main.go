// Command scheduler starts Sluice workflow runs (on schedule or on demand),
// serves the monitoring UI, shows run history and the data catalog, and runs
// the embedded demo. `scheduler help` lists its subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"sluice/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := cli.Main(ctx, os.Args[1:], os.Stdout)
	stop()
	if code := cli.ExitCode(err); code != cli.ExitOK {
		if !cli.Reported(err) {
			fmt.Fprintln(os.Stderr, "scheduler:", err)
		}
		os.Exit(code)
	}
}
