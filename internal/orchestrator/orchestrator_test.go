package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/testenv"
	"sluice/pipeline/civil"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var window = civil.Window{Start: civil.Date{Year: 2024, Month: 3, Day: 9}, End: civil.Date{Year: 2024, Month: 3, Day: 11}}

// newOrchestrator connects an orchestrator with the example workflow to a
// fresh Redis database, and an inspector of the same queues.
func newOrchestrator(url string) (*orchestrator.Orchestrator, *asynq.Inspector, error) {
	return newOrchestratorOf(url, "mobile-user.yaml")
}

// newOrchestratorOf loads the shipped workflow file name.
func newOrchestratorOf(url, name string) (*orchestrator.Orchestrator, *asynq.Inspector, error) {
	_, file, _, _ := runtime.Caller(0)
	wfs, err := config.LoadWorkflows(filepath.Join(filepath.Dir(file), "..", "..", "workflows", name))
	if err != nil {
		return nil, nil, err
	}
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		return nil, nil, err
	}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: opt, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, nil, err
	}
	return orch, asynq.NewInspector(opt), nil
}

func setup(t *testing.T) (*orchestrator.Orchestrator, *asynq.Inspector) {
	t.Helper()
	orch, in, err := newOrchestrator(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Close(); in.Close() })
	return orch, in
}

// start starts a run of the example workflow over window.
func start(t *testing.T, orch *orchestrator.Orchestrator) redisstore.Started {
	t.Helper()
	st, err := orch.Start(context.Background(), "mobile-user", window, redisstore.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Starting a run enqueues its first step; finishing that step records it
// and enqueues what its trigger starts.
func Example() {
	url, err := testenv.NewRedisDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	orch, in, err := newOrchestrator(url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer orch.Close()
	defer in.Close()
	ctx := context.Background()

	st, _ := orch.Start(ctx, "mobile-user", window, redisstore.StartOptions{Trigger: "example"})
	fmt.Println("created:", st.Created, "started:", st.Start)
	ref := tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: "segmentlogs-IOS"}
	task, _ := in.GetTaskInfo(tasks.QueueCrawl, tasks.CrawlRunID(ref))
	fmt.Println("queued:", task.Type)

	fin, _ := orch.Finish(ctx, ref, workflow.Succeeded, nil, nil)
	fmt.Println("started next:", fin.Start)
	fmt.Println("run:", fin.Run.State, "ios crawler:", fin.Run.Steps["segmentlogs-IOS"].State)
	// Output:
	// created: true started: [segmentlogs-IOS]
	// queued: crawl:run
	// started next: [segmentlogs-Android]
	// run: RUNNING ios crawler: SUCCEEDED
}

// A task archived without the worker recording the failure (its last attempt
// was SIGKILLed, or an operator archived it in asynqmon) fails its step when
// the archive is swept, so the run does not stay RUNNING.
func TestSweepFailsStepsOfArchivedTasks(t *testing.T) {
	t.Parallel()
	orch, in := setup(t)
	ctx := context.Background()
	st := start(t, orch)
	if n, err := orch.FailArchived(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("sweep with nothing archived: %d %v", n, err)
	}
	if err := in.ArchiveTask(tasks.QueueCrawl, tasks.CrawlRunID(tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: "segmentlogs-IOS"})); err != nil {
		t.Fatal(err)
	}
	n, err := orch.FailArchived(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("sweep failed %d steps, err %v; want 1", n, err)
	}
	run, err := orch.Run(ctx, st.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != workflow.Failed || !strings.Contains(run.Steps["segmentlogs-IOS"].Error, "archived") {
		t.Fatalf("run %s, step %+v", run.State, run.Steps["segmentlogs-IOS"])
	}
	if n, _ := orch.FailArchived(ctx, time.Hour); n != 0 {
		t.Fatalf("a second sweep failed %d more steps", n)
	}
}

// A run whose creator died before enqueuing its first steps gets them when
// anyone asks to start it again.
func TestStartingAnActiveRunAgainEnqueuesItsSteps(t *testing.T) {
	t.Parallel()
	orch, in := setup(t)
	ctx := context.Background()
	st := start(t, orch)
	id := tasks.CrawlRunID(tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: "segmentlogs-IOS"})
	if err := in.DeleteTask(tasks.QueueCrawl, id); err != nil { // as if never enqueued
		t.Fatal(err)
	}
	again, err := orch.Start(ctx, "mobile-user", window, redisstore.StartOptions{})
	if err != nil || again.Created || again.Run.ID != st.Run.ID {
		t.Fatalf("second start: created %v run %s err %v", again.Created, again.Run.ID, err)
	}
	if _, err := in.GetTaskInfo(tasks.QueueCrawl, id); err != nil {
		t.Fatalf("the first step's task was not enqueued again: %v", err)
	}
}

// Finishing a step twice (a retried or duplicated completion) changes the
// run once and enqueues the next step once.
func TestFinishIsIdempotent(t *testing.T) {
	t.Parallel()
	orch, in := setup(t)
	ctx := context.Background()
	st := start(t, orch)
	ref := tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: "segmentlogs-IOS"}
	first, err := orch.Finish(ctx, ref, workflow.Succeeded, map[string]int{"n": 1}, nil)
	if err != nil || !first.Changed {
		t.Fatalf("first finish: %+v %v", first, err)
	}
	second, err := orch.Finish(ctx, ref, workflow.Failed, nil, fmt.Errorf("late failure"))
	if err != nil || second.Changed || second.Run.Steps["segmentlogs-IOS"].State != workflow.Succeeded {
		t.Fatalf("second finish changed the step: %+v %v", second, err)
	}
	pending, err := in.ListPendingTasks(tasks.QueueCrawl)
	if err != nil {
		t.Fatal(err)
	}
	var android int
	for _, ti := range pending {
		if strings.HasSuffix(ti.ID, ":segmentlogs_Android") {
			android++
		}
	}
	if android != 1 {
		t.Fatalf("%d Android crawl tasks pending, want 1", android)
	}
	if _, err := orch.Workflow("nope"); err == nil {
		t.Error("an unknown workflow was found")
	}
}

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	if _, err := orchestrator.New(orchestrator.Config{}); err == nil {
		t.Error("an empty config was accepted")
	}
}

// Cancelling a run ends it CANCELLED, removes its queued tasks (and only
// its own), and frees its window; a run that has ended cannot be
// cancelled.
func TestCancelRemovesTheRunsQueuedTasks(t *testing.T) {
	t.Parallel()
	orch, in := setup(t)
	ctx := context.Background()
	st := start(t, orch)
	other, err := orch.Start(ctx, "mobile-user", civil.Window{Start: window.End.AddDays(3), End: window.End.AddDays(3)}, redisstore.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run, err := orch.Cancel(ctx, st.Run.ID, "test")
	if err != nil || run.State != workflow.Cancelled {
		t.Fatalf("cancel: %s %v", run.State, err)
	}
	pending, err := in.ListPendingTasks(tasks.QueueCrawl)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || !tasks.OfRun(pending[0].ID, other.Run.ID) {
		t.Fatalf("pending after cancel: %v, want the other run's crawl alone", pending)
	}
	if _, err := orch.Cancel(ctx, st.Run.ID, "again"); !errors.Is(err, orchestrator.ErrNotRunning) {
		t.Errorf("second cancel: %v, want ErrNotRunning", err)
	}
	again, err := orch.Start(ctx, "mobile-user", window, redisstore.StartOptions{})
	if err != nil || !again.Created {
		t.Fatalf("start after cancel: %v %v", again.Created, err)
	}
}

// The example workflow's job keeps dedupe_horizon_days at its default (1),
// so a run of the window just after an active run's is refused: each
// would read the other's dates' published keys before either commits.
func TestStartRefusesAWindowWithinTheDedupeHorizon(t *testing.T) {
	t.Parallel()
	orch, _ := setup(t)
	ctx := context.Background()
	first := start(t, orch)
	next := civil.Window{Start: window.End.AddDays(1), End: window.End.AddDays(1)}
	if _, err := orch.Start(ctx, "mobile-user", next, redisstore.StartOptions{}); !errors.Is(err, redisstore.ErrOverlap) || !strings.Contains(err.Error(), first.Run.ID) {
		t.Fatalf("start of the next day: %v, want ErrOverlap naming %s", err, first.Run.ID)
	}
	apart := civil.Window{Start: window.End.AddDays(2), End: window.End.AddDays(2)}
	if _, err := orch.Start(ctx, "mobile-user", apart, redisstore.StartOptions{}); err != nil {
		t.Fatalf("start with a day between: %v", err)
	}
}

// A schedule whose windows are wider than the maximum fails at start,
// naming the field and the setting.
func TestScheduleWiderThanTheMaximumWindow(t *testing.T) {
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	wfs, err := config.LoadWorkflows(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	opt, err := asynq.ParseRedisURI(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: opt, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxWindowDays: 2})
	if err == nil || !strings.Contains(err.Error(), "steps[0] (mobile-user-start).trigger.schedule.window_days: 3 is more than -max-window-days (SLUICE_MAX_WINDOW_DAYS) allows (2)") {
		t.Errorf("New with a 3-day schedule and a 2-day maximum: %v", err)
	}
}
