package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"sluice/internal/api"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
)

// Windows are bounded: an anonymous dry run of every date there is is
// refused at once (it used to plan 3.6 million partitions and answer
// 602 MB), as is a start past tomorrow in the data's zone (it published an
// empty partition and counted as a fresh success).
func TestWindowsAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.generate()
	r := e.do("POST", "/api/v1/runs", `{"start": "0001-01-01", "end": "9999-12-31", "dry_run": true}`)
	msg, _ := r.errorBody(t)["error"].(string)
	if r.status != http.StatusBadRequest || !strings.Contains(msg, "-max-window-days (SLUICE_MAX_WINDOW_DAYS)") || len(r.body) > 1024 {
		t.Errorf("dry run of every date: %d %.300s", r.status, r.body)
	}
	la, _ := time.LoadLocation("America/Los_Angeles")
	today := civil.DateOf(time.Now().In(la))
	for _, d := range []civil.Date{today.AddDays(2), {Year: 2062, Month: 3, Day: 1}} {
		r := e.do("POST", "/api/v1/runs", fmt.Sprintf(`{"start": %q}`, d), auth...)
		msg, _ := r.errorBody(t)["error"].(string)
		if r.status != http.StatusBadRequest || !strings.Contains(msg, "the last date the input can hold") {
			t.Errorf("start of %s: %d %s", d, r.status, r.body)
		}
	}
	// 92 dates (the default maximum) are planned; 93 are not.
	r = e.do("POST", "/api/v1/runs", `{"start": "2026-08-01", "end": "2026-10-31", "dry_run": true}`)
	var dry struct {
		DryRun struct {
			Steps []struct{ Partitions []struct{ Date string } }
		} `json:"dry_run"`
	}
	r.json(t, &dry)
	if r.status != http.StatusOK || len(dry.DryRun.Steps) != 1 || len(dry.DryRun.Steps[0].Partitions) != 92 {
		t.Errorf("dry run of 92 dates: %d %.300s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v1/runs", `{"start": "2026-08-01", "end": "2026-11-01", "dry_run": true}`); r.status != http.StatusBadRequest {
		t.Errorf("dry run of 93 dates: %d %.300s", r.status, r.body)
	}
}

// blockingPlanner holds every dry run until released (or its context
// ends): the API's bounds on dry runs are what is tested, not planning.
type blockingPlanner struct {
	started chan struct{}
	release chan struct{}
}

func (p *blockingPlanner) DryRun(ctx context.Context, _ string, _ civil.Window, _ bool) ([]job.StepDryRun, error) {
	p.started <- struct{}{}
	select {
	case <-p.release:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// At most DryRuns dry runs at once: one more is refused with 429 and
// Retry-After, and answered again once one ends.
func TestDryRunsAreBoundedInNumber(t *testing.T) {
	t.Parallel()
	p := &blockingPlanner{started: make(chan struct{}, 2), release: make(chan struct{})}
	e := newEnv(t, func(s *api.Service) { s.Planner, s.DryRuns = p, 2 })
	body := `{"start": "2026-10-30", "dry_run": true}`
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() { codes[i] = e.do("POST", "/api/v1/runs", body).status })
		<-p.started
	}
	r := e.do("POST", "/api/v1/runs", body)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Errorf("a third dry run at once: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	close(p.release)
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Errorf("the first two dry runs: %v", codes)
	}
	go func() { <-p.started }()
	if r := e.do("POST", "/api/v1/runs", body); r.status != http.StatusOK {
		t.Errorf("a dry run after they ended: %d %s", r.status, r.body)
	}
}

// A dry run that takes longer than DryRunTimeout is stopped: 503.
func TestDryRunsAreBoundedInTime(t *testing.T) {
	t.Parallel()
	p := &blockingPlanner{started: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnv(t, func(s *api.Service) { s.Planner, s.DryRunTimeout = p, 50*time.Millisecond })
	r := e.do("POST", "/api/v1/runs", `{"start": "2026-10-30", "dry_run": true}`)
	msg, _ := r.errorBody(t)["error"].(string)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(msg, "took longer than 50ms") {
		t.Errorf("a dry run past its time: %d %s", r.status, r.body)
	}
}
