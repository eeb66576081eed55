package scheduler_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/scheduler"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// succeed runs every step of a run to SUCCEEDED, the job writing rows
// rows into the window's first date.
func succeed(t *testing.T, orch *orchestrator.Orchestrator, run redisstore.Run, rows int64) {
	t.Helper()
	for _, step := range []string{"segmentlogs-IOS", "segmentlogs-Android", "mobile-user-daily", "segmentlogs-Mobile"} {
		var summary any
		if step == "mobile-user-daily" {
			summary = &job.Summary{RowsWritten: rows, Partitions: map[string]int64{run.Window.Start.String(): rows}}
		}
		ref := tasks.StepRef{Workflow: run.Workflow, RunID: run.ID, Step: step}
		if _, err := orch.Finish(context.Background(), ref, workflow.Succeeded, summary, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func scrape(t *testing.T, orch *orchestrator.Orchestrator, opt config.Redis) string {
	t.Helper()
	h, err := scheduler.Handler(opt, orch, scheduler.HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The freshness signal comes from what runs published: a run that
// succeeded without writing a row (dates with no input) does not count as
// a success of the workflow, a run started by hand does not count as the
// schedule's, and the table's newest partition is the newest date with
// rows, never moved back by a backfill.
func TestFreshnessComesFromPublishedRows(t *testing.T) {
	t.Parallel()
	orch, opt := setup(t)
	const (
		lastOK        = `sluice_workflow_last_success_timestamp_seconds{workflow="mobile-user"}`
		lastScheduled = `sluice_workflow_last_scheduled_success_timestamp_seconds{workflow="mobile-user"}`
		newest        = `sluice_table_newest_partition_timestamp_seconds{step="mobile-user-daily",table="segmentlogs.mobile",workflow="mobile-user"}`
	)
	start := func(date, trigger string) redisstore.Run {
		d, _ := civil.Parse(date)
		st, err := orch.Start(context.Background(), "mobile-user", civil.Window{Start: d, End: d}, redisstore.StartOptions{Trigger: trigger})
		if err != nil {
			t.Fatal(err)
		}
		return st.Run
	}
	empty := start("2026-11-20", "api")
	succeed(t, orch, empty, 0)
	page := scrape(t, orch, opt)
	for _, s := range []string{lastOK, lastScheduled, newest} {
		if v, ok := value(page, s); ok {
			t.Errorf("after a run that published nothing: %s = %v", s, v)
		}
	}
	manual := start("2026-11-10", "api")
	succeed(t, orch, manual, 5)
	manual, _ = orch.Run(context.Background(), manual.ID)
	page = scrape(t, orch, opt)
	if v, ok := value(page, lastOK); !ok || v != float64(manual.Ended.Unix()) {
		t.Errorf("%s = %v (present %v), want the manual run's end %d", lastOK, v, ok, manual.Ended.Unix())
	}
	if v, ok := value(page, lastScheduled); ok {
		t.Errorf("after a manual run only: %s = %v", lastScheduled, v)
	}
	scheduled := start("2026-11-25", "mobile-user-start")
	succeed(t, orch, scheduled, 7)
	scheduled, _ = orch.Run(context.Background(), scheduled.ID)
	backfill := start("2026-10-01", "api")
	succeed(t, orch, backfill, 3)
	page = scrape(t, orch, opt)
	if v, ok := value(page, lastScheduled); !ok || v != float64(scheduled.Ended.Unix()) {
		t.Errorf("%s = %v (present %v), want the scheduled run's end %d", lastScheduled, v, ok, scheduled.Ended.Unix())
	}
	want := civil.Date{Year: 2026, Month: 11, Day: 25}.UTCMidnight().Unix()
	if v, ok := value(page, newest); !ok || v != float64(want) {
		t.Errorf("%s = %v (present %v), want 2026-11-25 (%d)", newest, v, ok, want)
	}
}

// A paused workflow's schedule fires nothing (the fire is skipped, not
// made up), and says so in sluice_schedule_paused; resumed, it fires
// again. Queues and starts on demand are not its business.
func TestPausedScheduleFiresNothing(t *testing.T) {
	t.Parallel()
	orch, opt := setup(t)
	ctx := context.Background()
	s, err := scheduler.New(scheduler.Config{Orchestrator: orch, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	wf, _ := orch.Workflow("mobile-user")
	trig := wf.Step("mobile-user-start")
	const paused = `sluice_schedule_paused{workflow="mobile-user"}`
	if v, ok := value(scrape(t, orch, opt), paused); !ok || v != 0 {
		t.Errorf("%s = %v (present %v), want 0", paused, v, ok)
	}
	if _, err := orch.PauseSchedule(ctx, "mobile-user", "test", "holiday"); err != nil {
		t.Fatal(err)
	}
	fire := time.Date(2026, 11, 20, 13, 0, 0, 0, time.UTC)
	s.Fire(ctx, wf, trig, fire)
	if runs, err := orch.Runs(ctx, "mobile-user", 10); err != nil || len(runs) != 0 {
		t.Fatalf("a paused schedule started %d runs (%v)", len(runs), err)
	}
	if v, ok := value(scrape(t, orch, opt), paused); !ok || v != 1 {
		t.Errorf("%s = %v (present %v), want 1", paused, v, ok)
	}
	if err := orch.ResumeSchedule(ctx, "mobile-user", "test"); err != nil {
		t.Fatal(err)
	}
	s.Fire(ctx, wf, trig, fire.Add(24*time.Hour))
	if runs, err := orch.Runs(ctx, "mobile-user", 10); err != nil || len(runs) != 1 || runs[0].Trigger != "mobile-user-start" {
		t.Fatalf("a resumed schedule started %v (%v), want one run", runs, err)
	}
}
