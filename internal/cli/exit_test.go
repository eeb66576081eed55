package cli

import (
	"context"
	"io"
	"net"
	"sluice/internal/testenv"
	"testing"
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
