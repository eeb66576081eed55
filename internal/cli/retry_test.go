package cli

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/testenv"
	"sluice/pipeline/civil"
)

// lineWriter sends each log record to a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	select {
	case w <- string(p):
	default:
	}
	return len(p), nil
}

// readRun rides out a Redis restart (AOF) with retries it logs; without a
// retry budget it fails at once, and a run that is gone is not retried.
func TestReadRunRetriesAcrossARedisRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := testenv.StartRedisServer(t, testenv.RedisConfig{AOF: true})
	redisOpt, err := config.ParseRedisURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wfs, err := config.LoadWorkflows(filepath.Join("..", "..", "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	logs := make(lineWriter, 100)
	log := slog.New(slog.NewTextHandler(logs, nil))
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: redisOpt, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Close()
	day := civil.Date{Year: 2026, Month: 10, Day: 30}
	st, err := orch.Start(ctx, "mobile-user", civil.Window{Start: day, End: day}, redisstore.StartOptions{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readRun(ctx, orch, "mobile-user.nope", time.Minute, log); !errors.Is(err, redisstore.ErrNotFound) || len(logs) != 0 {
		t.Fatalf("missing run: %v, %d retries logged; want ErrNotFound at once", err, len(logs))
	}

	srv.Kill()
	if _, err := readRun(ctx, orch, st.Run.ID, 0, log); err == nil || len(logs) != 0 {
		t.Fatalf("no retry budget: %v, %d retries logged; want the error at once", err, len(logs))
	}
	type result struct {
		run redisstore.Run
		err error
	}
	done := make(chan result, 1)
	go func() {
		run, err := readRun(ctx, orch, st.Run.ID, time.Minute, log)
		done <- result{run, err}
	}()
	select {
	case line := <-logs:
		t.Logf("logged: %s", line)
	case <-ctx.Done():
		t.Fatal("no retry logged")
	}
	srv.Restart()
	res := <-done
	if res.err != nil || res.run.ID != st.Run.ID {
		t.Fatalf("after the restart: %v, run %q", res.err, res.run.ID)
	}
}
