package api_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"sluice/pipeline/civil"
)

type runsPage struct {
	Runs []struct {
		ID     string
		State  string
		Window struct{ Start, End string }
	}
	NextCursor string `json:"next_cursor"`
}

// GET /api/v1/runs?state=&workflow=&date=&limit=&cursor=: filters hold,
// and pages of two followed by their cursors list exactly the filtered
// history, newest first.
func TestListRunsFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var all []string // newest first
	var cancelled []string
	for i := range 7 {
		d := civil.Date{Year: 2026, Month: 9, Day: 1}.AddDays(3 * i) // beyond the dedupe horizon of each other
		run := e.start(civil.Window{Start: d, End: d})
		all = slices.Insert(all, 0, run.ID)
		if i%2 == 0 {
			if _, err := e.orch.Cancel(context.Background(), run.ID, "test"); err != nil {
				t.Fatal(err)
			}
			cancelled = slices.Insert(cancelled, 0, run.ID)
		}
	}
	list := func(query url.Values) []string {
		t.Helper()
		var ids []string
		for page := 0; ; page++ {
			r := e.do("GET", "/api/v1/runs?"+query.Encode(), "")
			var p runsPage
			r.json(t, &p)
			if r.status != http.StatusOK || len(p.Runs) > 2 {
				t.Fatalf("runs?%s: %d %s", query.Encode(), r.status, r.body)
			}
			for _, run := range p.Runs {
				ids = append(ids, run.ID)
			}
			if p.NextCursor == "" {
				return ids
			}
			query.Set("cursor", p.NextCursor)
		}
	}
	if got := list(url.Values{"limit": {"2"}}); !slices.Equal(got, all) {
		t.Errorf("every run in pages of 2:\n%v\nwant\n%v", got, all)
	}
	if got := list(url.Values{"limit": {"2"}, "state": {"CANCELLED"}, "workflow": {"mobile-user"}}); !slices.Equal(got, cancelled) {
		t.Errorf("cancelled runs:\n%v\nwant\n%v", got, cancelled)
	}
	if got := list(url.Values{"limit": {"2"}, "state": {"running"}}); len(got) != 3 {
		t.Errorf("running runs: %v, want 3", got)
	}
	if got := list(url.Values{"limit": {"2"}, "date": {"2026-09-04"}}); !slices.Equal(got, all[5:6]) {
		t.Errorf("runs of 2026-09-04: %v, want %v", got, all[5:6])
	}
	for q, want := range map[string]int{
		"state=DONE":          http.StatusBadRequest,
		"cursor=not-a-cursor": http.StatusBadRequest,
		"date=2026-09-31":     http.StatusBadRequest,
		"limit=0":             http.StatusBadRequest,
		"workflow=nope":       http.StatusNotFound,
	} {
		if r := e.do("GET", "/api/v1/runs?"+q, ""); r.status != want {
			t.Errorf("runs?%s: %d %s, want %d", q, r.status, r.body, want)
		}
	}
}
