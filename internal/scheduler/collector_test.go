package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/redisstore"
	"sluice/internal/scheduler"
	"sluice/internal/testenv"
	"sluice/pipeline/civil"
	"sluice/tasks"
)

// value finds a series ("name{label="value",…}", labels sorted) in a
// Prometheus text page.
func value(page, series string) (float64, bool) {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// /metrics tells when each schedule fires next and how often, how many
// workers serve each queue (zero included), and how long running steps
// have run.
func TestMetricsExportScheduleFleetAndRunningSteps(t *testing.T) {
	t.Parallel()
	orch, opt := setup(t)
	win := civil.Window{Start: civil.Date{Year: 2026, Month: 10, Day: 30}, End: civil.Date{Year: 2026, Month: 10, Day: 30}}
	if _, err := orch.Start(t.Context(), "mobile-user", win, redisstore.StartOptions{Trigger: "test"}); err != nil {
		t.Fatal(err)
	}
	// One worker process serving the transform queue only, three at once.
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 3, Queues: map[string]int{tasks.QueueTransform: 1}, LogLevel: asynq.ErrorLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	handler, err := scheduler.Handler(opt, orch, scheduler.HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(handler)
	defer h.Close()
	var page string
	testenv.EventuallyWithin(t, 15*time.Second, "the worker in sluice_fleet_workers", func() error {
		resp, err := h.Client().Get(h.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page = string(b)
		if v, _ := value(page, `sluice_fleet_workers{queue="transform"}`); v != 1 {
			return fmt.Errorf("%v workers:\n%s", v, page)
		}
		return nil
	})
	now := float64(time.Now().Unix())
	for series, want := range map[string]float64{
		`sluice_fleet_slots{queue="transform"}`:                                              3,
		`sluice_fleet_workers{queue="crawl"}`:                                                0,
		`sluice_schedule_period_seconds{trigger="mobile-user-start",workflow="mobile-user"}`: 60,
		`asynq_tasks_enqueued_total{queue="crawl",state="pending"}`:                          1,
		`sluice_workflow_recent_runs{state="RUNNING",workflow="mobile-user"}`:                1,
		`sluice_workflow_recent_runs{state="CANCELLED",workflow="mobile-user"}`:              0,
	} {
		if v, ok := value(page, series); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if v, ok := value(page, `sluice_schedule_next_fire_timestamp_seconds{trigger="mobile-user-start",workflow="mobile-user"}`); !ok || v < now-1 || v > now+61 {
		t.Errorf("next fire %v (present %v), want within the next minute of %v", v, ok, now)
	}
	if v, ok := value(page, `sluice_step_running_seconds{step="segmentlogs-IOS",workflow="mobile-user"}`); !ok || v < 0 {
		t.Errorf("running crawler: %v (present %v)", v, ok)
	}
	if _, ok := value(page, `sluice_step_running_seconds{step="mobile-user-start",workflow="mobile-user"}`); ok {
		t.Error("a trigger is reported as a running step")
	}
}
