package redisstore

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"sluice/internal/testenv"
	"sluice/pipeline/civil"
	"sluice/pipeline/workflow"
)

func setup(t *testing.T) (*Runs, *workflow.Workflow) {
	t.Helper()
	opt, err := redis.ParseURL(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	_, file, _, _ := runtime.Caller(0)
	wf, err := workflow.Load(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewRuns(rdb), wf
}

var window = civil.Window{Start: civil.Date{Year: 2026, Month: 10, Day: 30}, End: civil.Date{Year: 2026, Month: 11, Day: 1}}

func TestSecondStartOfAnActiveWindowReturnsTheFirstRun(t *testing.T) {
	t.Parallel()
	s, wf := setup(t)
	ctx := context.Background()
	first, err := s.Start(ctx, wf, window, StartOptions{Trigger: "on-demand"})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || len(first.Start) != 1 || first.Start[0] != "segmentlogs-IOS" {
		t.Fatalf("first start: %+v", first)
	}
	second, err := s.Start(ctx, wf, window, StartOptions{Trigger: "on-demand"})
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || second.Run.ID != first.Run.ID || len(second.Start) != 0 {
		t.Fatalf("second start created %v run %s, want the first run %s", second.Created, second.Run.ID, first.Run.ID)
	}
	other, err := s.Start(ctx, wf, civil.Window{Start: window.End.AddDays(1), End: window.End.AddDays(1)}, StartOptions{})
	if err != nil || !other.Created {
		t.Fatalf("another window: created %v err %v", other.Created, err)
	}
}

func TestTwoSchedulersFiringTheSameTickStartOneRun(t *testing.T) {
	t.Parallel()
	s, wf := setup(t)
	ctx := context.Background()
	fire := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	created := make(chan string, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := s.Start(ctx, wf, window, StartOptions{Trigger: "mobile-user-start", Dedupe: DedupeKey(wf.Name, "mobile-user-start", fire)})
			if err != nil {
				t.Error(err)
				return
			}
			if st.Created {
				created <- st.Run.ID
			}
		}()
	}
	wg.Wait()
	close(created)
	if n := len(created); n != 1 {
		t.Fatalf("%d runs created, want 1", n)
	}
	// Even after that run has ended, the same tick never starts another.
	runID := <-created
	finishAll(t, s, wf, runID)
	again, err := s.Start(ctx, wf, window, StartOptions{Dedupe: DedupeKey(wf.Name, "mobile-user-start", fire)})
	if err != nil || again.Created {
		t.Fatalf("refire of an ended tick: created %v err %v", again.Created, err)
	}
}

func finishAll(t *testing.T, s *Runs, wf *workflow.Workflow, runID string) Run {
	t.Helper()
	ctx := context.Background()
	for _, step := range []string{"segmentlogs-IOS", "segmentlogs-Android", "mobile-user-daily", "segmentlogs-Mobile"} {
		fin, err := s.Finish(ctx, wf, runID, step, workflow.Succeeded, map[string]int{"rows": 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !fin.Changed {
			t.Fatalf("finish %s did not change the run", step)
		}
	}
	run, err := s.Get(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func TestARunEndsAndFreesItsWindow(t *testing.T) {
	t.Parallel()
	s, wf := setup(t)
	ctx := context.Background()
	st, err := s.Start(ctx, wf, window, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run := finishAll(t, s, wf, st.Run.ID)
	if run.State != workflow.Succeeded || run.Ended.IsZero() {
		t.Fatalf("run %s ended %v", run.State, run.Ended)
	}
	if string(run.Steps["mobile-user-daily"].Summary) != `{"rows":1}` {
		t.Fatalf("summary %s", run.Steps["mobile-user-daily"].Summary)
	}
	next, err := s.Start(ctx, wf, window, StartOptions{})
	if err != nil || !next.Created || next.Run.ID == run.ID {
		t.Fatalf("rerun after the end: created %v id %s err %v", next.Created, next.Run.ID, err)
	}
	runs, err := s.List(ctx, wf.Name, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != next.Run.ID {
		t.Fatalf("list: %d runs err %v", len(runs), err)
	}
}

func TestConcurrentFinishOfTheSameStepTransitionsOnce(t *testing.T) {
	t.Parallel()
	s, wf := setup(t)
	ctx := context.Background()
	st, err := s.Start(ctx, wf, window, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	changed, started := 0, 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fin, err := s.Finish(ctx, wf, st.Run.ID, "segmentlogs-IOS", workflow.Succeeded, nil, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if fin.Changed {
				changed++
				started += len(fin.Start)
			}
		}()
	}
	wg.Wait()
	if changed != 1 || started != 1 {
		t.Fatalf("changed %d times, started %d steps; want 1 and 1", changed, started)
	}
}

func TestFailedStepFailsTheRun(t *testing.T) {
	t.Parallel()
	s, wf := setup(t)
	ctx := context.Background()
	st, _ := s.Start(ctx, wf, window, StartOptions{})
	fin, err := s.Finish(ctx, wf, st.Run.ID, "segmentlogs-IOS", workflow.Failed, nil, errors.New("bucket gone"))
	if err != nil {
		t.Fatal(err)
	}
	if fin.Run.State != workflow.Failed || fin.Run.Steps["segmentlogs-IOS"].Error != "bucket gone" || fin.Run.Steps["segmentlogs-Mobile"].State != workflow.NotRun {
		t.Fatalf("run %s, steps %+v", fin.Run.State, fin.Run.Steps)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
}

func TestOverlappingWindowsDoNotRunAtOnce(t *testing.T) {
	t.Parallel()
	s, wf := setup(t)
	ctx := context.Background()
	first, err := s.Start(ctx, wf, window, StartOptions{}) // 10-30..11-01
	if err != nil {
		t.Fatal(err)
	}
	one := civil.Window{Start: window.End, End: window.End}
	if _, err := s.Start(ctx, wf, one, StartOptions{}); !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), first.Run.ID) {
		t.Fatalf("overlapping start: %v, want ErrOverlap naming %s", err, first.Run.ID)
	}
	later := civil.Window{Start: window.End.AddDays(1), End: window.End.AddDays(2)}
	if st, err := s.Start(ctx, wf, later, StartOptions{}); err != nil || !st.Created {
		t.Fatalf("disjoint window: created %v err %v", st.Created, err)
	}
	finishAll(t, s, wf, first.Run.ID)
	if st, err := s.Start(ctx, wf, one, StartOptions{}); err != nil || !st.Created {
		t.Fatalf("after the overlapping run ended: created %v err %v", st.Created, err)
	}
}

// A cancelled run ends at once: its running step CANCELLED, the steps not
// reached NOT_RUN, its window free for a new run; a late finish of the
// cancelled step changes nothing, and a second cancel reports no change.
func TestCancelEndsTheRunAndFreesItsWindow(t *testing.T) {
	t.Parallel()
	s, wf := setup(t)
	ctx := context.Background()
	st, err := s.Start(ctx, wf, window, StartOptions{Trigger: "api", By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fin, err := s.Cancel(ctx, wf, st.Run.ID, "by test")
	if err != nil || !fin.Changed {
		t.Fatalf("cancel: %+v %v", fin, err)
	}
	run, err := s.Get(ctx, st.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != workflow.Cancelled || run.Ended.IsZero() || run.By != "test" {
		t.Fatalf("run after cancel: %s ended %v by %q", run.State, run.Ended, run.By)
	}
	if rec := run.Steps["segmentlogs-IOS"]; rec.State != workflow.Cancelled || rec.Error != "cancelled: by test" {
		t.Errorf("running step after cancel: %+v", rec)
	}
	if rec := run.Steps["mobile-user-daily"]; rec.State != workflow.NotRun {
		t.Errorf("step not reached after cancel: %s", rec.State)
	}
	if state, err := s.State(ctx, st.Run.ID); err != nil || state != workflow.Cancelled {
		t.Errorf("State: %s %v", state, err)
	}
	if f, err := s.Finish(ctx, wf, st.Run.ID, "segmentlogs-IOS", workflow.Succeeded, nil, nil); err != nil || f.Changed {
		t.Errorf("finish after cancel: changed %v err %v", f.Changed, err)
	}
	if again, err := s.Cancel(ctx, wf, st.Run.ID, "again"); err != nil || again.Changed {
		t.Errorf("second cancel: changed %v err %v", again.Changed, err)
	}
	next, err := s.Start(ctx, wf, window, StartOptions{})
	if err != nil || !next.Created {
		t.Fatalf("start after cancel: created %v err %v", next.Created, err)
	}
	if _, err := s.State(ctx, "no-such-run"); !errors.Is(err, ErrNotFound) {
		t.Errorf("State of a missing run: %v", err)
	}
}

// ClaimTable returns the other running runs' windows (not those that
// ended), and from then on no other run starts, whatever its window; the
// claiming run's own window still answers with the run itself.
func TestClaimTable(t *testing.T) {
	t.Parallel()
	s, wf := setup(t)
	ctx := context.Background()
	a, err := s.Start(ctx, wf, window, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	later := civil.Window{Start: window.End.AddDays(3), End: window.End.AddDays(4)}
	b, err := s.Start(ctx, wf, later, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ended := civil.Window{Start: window.End.AddDays(10), End: window.End.AddDays(10)}
	c, err := s.Start(ctx, wf, ended, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	finishAll(t, s, wf, c.Run.ID)
	got, err := s.ClaimTable(ctx, wf.Name, a.Run.ID)
	if err != nil || len(got) != 1 || got[b.Run.ID] != later {
		t.Fatalf("claim: others %v err %v", got, err)
	}
	if again, err := s.ClaimTable(ctx, wf.Name, a.Run.ID); err != nil || len(again) != 1 {
		t.Fatalf("a retried claim: %v err %v", again, err)
	}
	far := civil.Window{Start: window.End.AddDays(30), End: window.End.AddDays(30)}
	if _, err := s.Start(ctx, wf, far, StartOptions{}); !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), a.Run.ID) || !strings.Contains(err.Error(), "schema change") {
		t.Fatalf("start while the table is claimed: %v", err)
	}
	if st, err := s.Start(ctx, wf, window, StartOptions{}); err != nil || st.Created || st.Run.ID != a.Run.ID {
		t.Fatalf("start of the claiming run's window: %+v %v", st, err)
	}
	finishAll(t, s, wf, a.Run.ID)
	if _, err := s.ClaimTable(ctx, wf.Name, a.Run.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim by an ended run: %v", err)
	}
	if _, err := s.Start(ctx, wf, far, StartOptions{}); err != nil {
		t.Fatalf("start after the claiming run ended: %v", err)
	}
}

// With guard days, a window that comes that close to an active run's is
// refused; one a day further is not.
func TestStartGuardDays(t *testing.T) {
	t.Parallel()
	s, wf := setup(t)
	ctx := context.Background()
	if _, err := s.Start(ctx, wf, window, StartOptions{GuardDays: 1}); err != nil {
		t.Fatal(err)
	}
	next := civil.Window{Start: window.End.AddDays(1), End: window.End.AddDays(1)}
	if _, err := s.Start(ctx, wf, next, StartOptions{GuardDays: 1}); !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), "within 1 day") {
		t.Fatalf("adjacent window with 1 guard day: %v", err)
	}
	before := civil.Window{Start: window.Start.AddDays(-1), End: window.Start.AddDays(-1)}
	if _, err := s.Start(ctx, wf, before, StartOptions{GuardDays: 1}); !errors.Is(err, ErrOverlap) {
		t.Fatalf("the day before with 1 guard day: %v", err)
	}
	if _, err := s.Start(ctx, wf, next, StartOptions{}); err != nil {
		t.Fatalf("adjacent window without guard days: %v", err)
	}
	apart := civil.Window{Start: window.Start.AddDays(-2), End: window.Start.AddDays(-2)}
	if _, err := s.Start(ctx, wf, apart, StartOptions{GuardDays: 1}); err != nil {
		t.Fatalf("a day between the windows: %v", err)
	}
}
