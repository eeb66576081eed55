package workflow

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func exampleWorkflow(t *testing.T) *Workflow {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	w, err := Load(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustFinish(t *testing.T, w *Workflow, st States, step string, res StepState) Transition {
	t.Helper()
	tr, err := w.Finish(st, step, res)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestMobileUserRunsTheEightStepsInOrder(t *testing.T) {
	t.Parallel()
	w := exampleWorkflow(t)
	if len(w.Steps) != 8 {
		t.Fatalf("example has %d steps, want 8", len(w.Steps))
	}
	tr := w.Begin()
	if !slices.Equal(tr.Start, []string{"segmentlogs-IOS"}) || tr.Run != Running {
		t.Fatalf("begin: start %v run %s", tr.Start, tr.Run)
	}
	if tr.States["mobile-user-start"] != Succeeded || tr.States["android-crawler-trigger"] != Waiting {
		t.Fatalf("begin states: %v", tr.States)
	}
	order := []string{"segmentlogs-IOS", "segmentlogs-Android", "mobile-user-daily", "segmentlogs-Mobile"}
	for i, step := range order {
		tr = mustFinish(t, w, tr.States, step, Succeeded)
		if i+1 < len(order) {
			if !slices.Equal(tr.Start, []string{order[i+1]}) || tr.Run != Running {
				t.Fatalf("after %s: start %v run %s", step, tr.Start, tr.Run)
			}
		}
	}
	if tr.Run != Succeeded || len(tr.Start) != 0 {
		t.Fatalf("end: run %s start %v", tr.Run, tr.Start)
	}
	for name, st := range tr.States {
		if st != Succeeded {
			t.Errorf("step %s ended %s", name, st)
		}
	}
}

func TestFailureStopsTheChainAndFailsTheRun(t *testing.T) {
	t.Parallel()
	w := exampleWorkflow(t)
	tr := w.Begin()
	tr = mustFinish(t, w, tr.States, "segmentlogs-IOS", Succeeded)
	tr = mustFinish(t, w, tr.States, "segmentlogs-Android", Failed)
	if tr.Run != Failed || len(tr.Start) != 0 {
		t.Fatalf("run %s start %v", tr.Run, tr.Start)
	}
	for _, s := range []string{"mobile-user-etl-trigger", "mobile-user-daily", "mobile-crawler-trigger", "segmentlogs-Mobile"} {
		if tr.States[s] != NotRun {
			t.Errorf("%s: %s, want NOT_RUN", s, tr.States[s])
		}
	}
}

func TestFinishTwiceIsRefused(t *testing.T) {
	t.Parallel()
	w := exampleWorkflow(t)
	tr := w.Begin()
	tr = mustFinish(t, w, tr.States, "segmentlogs-IOS", Succeeded)
	if _, err := w.Finish(tr.States, "segmentlogs-IOS", Succeeded); err == nil {
		t.Fatal("second finish of the same step was accepted")
	}
	if _, err := w.Finish(tr.States, "android-crawler-trigger", Succeeded); err == nil {
		t.Fatal("finishing a trigger was accepted")
	}
}

const fanWorkflow = `
name: fan
catalog: file:///tmp/c
steps:
  - name: go
    trigger: {type: ON_DEMAND, actions: [a, b]}
  - name: a
    crawler: {location: file:///x, database: d, table: a}
  - name: b
    crawler: {location: file:///x, database: d, table: b}
  - name: both
    trigger:
      type: CONDITIONAL
      logical: ALL
      conditions: [{step: a, state: SUCCEEDED}, {step: b, state: SUCCEEDED}]
      actions: [c]
  - name: on-failure
    trigger:
      type: CONDITIONAL
      logical: ANY
      conditions: [{step: a, state: FAILED}, {step: b, state: FAILED}]
      actions: [alert]
  - name: c
    crawler: {location: file:///x, database: d, table: c}
  - name: alert
    crawler: {location: file:///x, database: d, table: alert}
`

func TestAllAndAnyPredicates(t *testing.T) {
	t.Parallel()
	w, err := Parse([]byte(fanWorkflow), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := w.Begin()
	if !slices.Equal(tr.Start, []string{"a", "b"}) {
		t.Fatalf("begin starts %v", tr.Start)
	}
	tr = mustFinish(t, w, tr.States, "a", Succeeded)
	if len(tr.Start) != 0 {
		t.Fatalf("ALL fired with one of two: %v", tr.Start)
	}
	ok := mustFinish(t, w, tr.States, "b", Succeeded)
	if !slices.Equal(ok.Start, []string{"c"}) {
		t.Fatalf("ALL did not fire: %v", ok.Start)
	}
	bad := mustFinish(t, w, tr.States, "b", Failed)
	if !slices.Equal(bad.Start, []string{"alert"}) || bad.States["c"] != Waiting {
		t.Fatalf("ANY on failure: start %v, c %s", bad.Start, bad.States["c"])
	}
	end := mustFinish(t, w, bad.States, "alert", Succeeded)
	if end.Run != Failed || end.States["c"] != NotRun {
		t.Fatalf("run %s c %s", end.Run, end.States["c"])
	}
}

func TestBadFilesNameTheField(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ yaml, want string }{
		"unknown action": {strings.Replace(fanWorkflow, "actions: [c]", "actions: [nope]", 1), `actions[0]: unknown step "nope"`},
		"bad state":      {strings.Replace(fanWorkflow, "{step: a, state: SUCCEEDED}", "{step: a, state: DONE}", 1), "conditions[0].state: must be SUCCEEDED or FAILED"},
		"bad logical":    {strings.Replace(fanWorkflow, "logical: ALL", "logical: SOME", 1), "trigger.logical: must be ALL or ANY"},
		"unknown field":  {strings.Replace(fanWorkflow, "table: a}", "table: a, tabel: x}", 1), "field tabel not found"},
		"bad cron":       {strings.Replace(fanWorkflow, "{type: ON_DEMAND, actions: [a, b]}", "{type: SCHEDULED, schedule: {cron: '61 * * * *'}, actions: [a, b]}", 1), "steps[0] (go).trigger.schedule: cron"},
		"bad zone":       {strings.Replace(fanWorkflow, "{type: ON_DEMAND, actions: [a, b]}", "{type: SCHEDULED, schedule: {cron: '0 13 * * *', timezone: Mars/Olympus}, actions: [a, b]}", 1), `timezone: "Mars/Olympus" is not an IANA time zone name`},
		"missing table":  {strings.Replace(fanWorkflow, ", table: c}", "}", 1), "steps[5] (c).crawler.table: is required"},
		"no start":       {strings.Replace(fanWorkflow, "type: ON_DEMAND", "type: CONDITIONAL", 1), "nothing can start a run"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestScheduleWindowAndEnvExpansion(t *testing.T) {
	os.Setenv("SLUICE_TEST_CATALOG", "s3://cat/x")
	defer os.Unsetenv("SLUICE_TEST_CATALOG")
	y := strings.Replace(fanWorkflow, "catalog: file:///tmp/c", "catalog: ${SLUICE_TEST_CATALOG:-file:///nope}", 1)
	y = strings.Replace(y, "{type: ON_DEMAND, actions: [a, b]}",
		"{type: SCHEDULED, schedule: {cron: '0 13 * * *', timezone: America/Los_Angeles, window_days: 3}, actions: [a, b]}", 1)
	w, err := Parse([]byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Catalog != "s3://cat/x" {
		t.Fatalf("catalog %q", w.Catalog)
	}
	sched := w.Steps[0].Trigger.Schedule
	// 2026-11-01 is the 25-hour day in Los Angeles; 13:00 local is 21:00 UTC.
	next := sched.Next(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 11, 1, 21, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("next %v, want %v", next.UTC(), want)
	}
	win := sched.WindowFor(next)
	if win.String() != "2026-10-29..2026-10-31" {
		t.Fatalf("window %s", win)
	}
}

// A retried run resumes its failed step; the steps the failure left
// NOT_RUN wait again, and run when it succeeds.
func TestRetryResumesTheFailedStep(t *testing.T) {
	t.Parallel()
	w := exampleWorkflow(t)
	tr := w.Begin()
	tr = mustFinish(t, w, tr.States, "segmentlogs-IOS", Succeeded)
	tr = mustFinish(t, w, tr.States, "segmentlogs-Android", Succeeded)
	tr = mustFinish(t, w, tr.States, "mobile-user-daily", Failed)
	if tr.Run != Failed || tr.States["segmentlogs-Mobile"] != NotRun {
		t.Fatalf("after the job failed: %s %v", tr.Run, tr.States)
	}
	re, err := w.Retry(tr.States)
	if err != nil {
		t.Fatal(err)
	}
	if re.Run != Running || !slices.Equal(re.Start, []string{"mobile-user-daily"}) || re.States["mobile-user-daily"] != Running ||
		re.States["mobile-crawler-trigger"] != Waiting || re.States["segmentlogs-Mobile"] != Waiting || re.States["segmentlogs-IOS"] != Succeeded {
		t.Fatalf("retry: %+v", re)
	}
	tr = mustFinish(t, w, re.States, "mobile-user-daily", Succeeded)
	if !slices.Equal(tr.Start, []string{"segmentlogs-Mobile"}) {
		t.Fatalf("after the retried job: start %v", tr.Start)
	}
	if _, err := w.Retry(mustFinish(t, w, tr.States, "segmentlogs-Mobile", Succeeded).States); err == nil {
		t.Error("a run without a failed step was retried")
	}
}
