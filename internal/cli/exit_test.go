package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/testenv"
	"sluice/pipeline/civil"
)

// Scripts tell a mistake of theirs (2) from a service that is down (3), so
// each subcommand must say which it is.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: taken, then given back.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "redis://" + l.Addr().String() + "/0"
	l.Close()
	wf := "-workflows=../../workflows/mobile-user.yaml"
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"-h"}, ExitOK},
		{[]string{"start", "-h"}, ExitOK},
		{[]string{"catalog", "-h"}, ExitOK},
		{[]string{"nosuchcommand"}, ExitUsage},
		{[]string{"start", wf}, ExitUsage},                         // no -start
		{[]string{"start", wf, "-start", "2026-13-01"}, ExitUsage}, // not a date
		{[]string{"show", wf}, ExitUsage},                          // no run id
		{[]string{"runs", "-bogus"}, ExitUsage},
		{[]string{"catalog", "-bogus"}, ExitUsage},
		{[]string{"catalog", "-catalog", "file:///nonexistent", "bogus"}, ExitUsage},
		{[]string{"catalog", "-catalog", "file:///nonexistent", "show"}, ExitUsage},
		{[]string{"catalog", "-catalog", "file:///nonexistent", "show", "nodot"}, ExitUsage},
		{[]string{"catalog", "-catalog", "file:///nonexistent", "ddl", "-bogus", "a.b"}, ExitUsage},
		{[]string{"generate", "-days", "x"}, ExitUsage},
		{[]string{"generate", "-start", "x"}, ExitUsage},
		{[]string{"runs", wf, "-redis-url", down}, ExitError},
		{[]string{"start", wf, "-redis-url", testenv.RedisDB(t), "-start", "2026-10-30", "-workflow", "nosuch"}, ExitUsage},
		{[]string{"start", wf, "-redis-url", testenv.RedisDB(t), "-start", "2026-01-01", "-end", "2026-12-01"}, ExitUsage}, // wider than -max-window-days
		{[]string{"start", wf, "-redis-url", testenv.RedisDB(t), "-start", "2062-03-01"}, ExitUsage},                       // past tomorrow
		{[]string{"start", wf, "-max-window-days", "0", "-start", "2026-10-30"}, ExitUsage},
		{[]string{"retry", wf}, ExitUsage},  // no run id
		{[]string{"pause", wf}, ExitUsage},  // no workflow
		{[]string{"resume", wf}, ExitUsage}, // no workflow
		{[]string{"pause", wf, "-redis-url", testenv.RedisDB(t), "nosuch"}, ExitUsage},
	} {
		err := Main(context.Background(), tc.args, io.Discard)
		if got := ExitCode(err); got != tc.want {
			t.Errorf("scheduler %q: exit %d (%v), want %d", tc.args, got, err, tc.want)
		}
	}
}

// pause and resume change what the schedule loop reads; a retry of a run
// that has not failed is refused with exit 2.
func TestPauseResumeAndRetryCommands(t *testing.T) {
	t.Parallel()
	url := testenv.RedisDB(t)
	wf := "-workflows=../../workflows/mobile-user.yaml"
	run := func(args ...string) error {
		return Main(context.Background(), append([]string{args[0], wf, "-redis-url", url}, args[1:]...), io.Discard)
	}
	if err := run("pause", "-reason", "test", "mobile-user"); err != nil {
		t.Fatal(err)
	}
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	wfs, err := config.LoadWorkflows("../../workflows/mobile-user.yaml")
	if err != nil {
		t.Fatal(err)
	}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: opt, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Close()
	if p, paused, err := orch.SchedulePaused(context.Background(), "mobile-user"); err != nil || !paused || p.Reason != "test" {
		t.Fatalf("after scheduler pause: %+v %v %v", p, paused, err)
	}
	if err := run("resume", "mobile-user"); err != nil {
		t.Fatal(err)
	}
	if _, paused, _ := orch.SchedulePaused(context.Background(), "mobile-user"); paused {
		t.Fatal("still paused after scheduler resume")
	}
	st, err := orch.Start(context.Background(), "mobile-user", civil.Window{Start: civil.Date{Year: 2026, Month: 10, Day: 30}, End: civil.Date{Year: 2026, Month: 10, Day: 30}}, redisstore.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := run("retry", st.Run.ID); ExitCode(err) != ExitUsage || !strings.Contains(fmt.Sprint(err), "has not failed") {
		t.Errorf("retry of a running run: exit %d (%v), want %d", ExitCode(err), err, ExitUsage)
	}
}
