package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"sluice/internal/redisstore"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// Every task of a run is in its timeline: type, this worker, start before
// end, one attempt that succeeded, and the lines it logged (as JSON, with
// its attempt and worker) in its task log.
func TestTimelineRecordsEveryTaskAndItsLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t, tasks.DefaultOptions)
	h.serve()
	run := h.runToEnd()
	if run.State != workflow.Succeeded {
		t.Fatalf("run ended %s", run.State)
	}
	// A task's end is recorded once its handler returns, after the run
	// ended.
	h.awaitQuiet(run.ID)
	recs, dropped, err := h.orch.Timeline().Tasks(context.Background(), run.ID)
	if err != nil || dropped != 0 {
		t.Fatalf("timeline: %v, %d dropped", err, dropped)
	}
	types := map[string]int{}
	for _, r := range recs {
		types[r.Type]++
		a := r.Last()
		if r.AttemptCount != 1 || a.Outcome != redisstore.OutcomeSucceeded || a.Worker != h.worker.name || a.Started.IsZero() || a.Ended.Before(a.Started) {
			t.Errorf("task %s: %+v", r.ID, r)
		}
		if !tasks.OfRun(r.ID, run.ID) || r.Step == "" || r.Queue == "" {
			t.Errorf("task %s: step %q queue %q", r.ID, r.Step, r.Queue)
		}
	}
	for typ, want := range map[string]int{tasks.TypeCrawlRun: 3, tasks.TypeTransformPlan: 1, tasks.TypeTransformSplit: 1, tasks.TypeTransformReduce: 3, tasks.TypeTransformCommit: 3} {
		if types[typ] != want {
			t.Errorf("%d %s tasks in the timeline, want %d (%v)", types[typ], typ, want, types)
		}
	}
	if types[tasks.TypeTransformMap] < 1 {
		t.Errorf("no map task in the timeline: %v", types)
	}
	ref := tasks.StepRef{Workflow: "mobile-user", RunID: run.ID, Step: "mobile-user-daily"}
	lines, err := h.orch.Timeline().Log(context.Background(), run.ID, tasks.PlanID(ref))
	if err != nil {
		t.Fatal(err)
	}
	var planned bool
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if rec["attempt"] != 1.0 || rec["worker"] != h.worker.name {
			t.Errorf("log line without its attempt and worker: %s", l)
		}
		planned = planned || strings.Contains(l, "transform planned")
	}
	if !planned {
		t.Errorf("the plan's log lacks its own line:\n%s", strings.Join(lines, "\n"))
	}
}

// A task attempt keeps its first and last lines, and says how many it left
// out between them; long values are cut.
func TestAttemptLogIsBounded(t *testing.T) {
	t.Parallel()
	l := &attemptLog{}
	log := slogTo(l)
	for i := range logHead + logTail + 250 {
		log.Info("line", "i", i, "big", strings.Repeat("x", 10*logValueBytes))
	}
	lines := l.lines()
	if len(lines) != logHead+logTail+1 {
		t.Fatalf("%d lines kept, want %d", len(lines), logHead+logTail+1)
	}
	var first, gap, last map[string]any
	for v, line := range map[*map[string]any][]byte{&first: lines[0], &gap: lines[logHead], &last: lines[len(lines)-1]} {
		if err := json.Unmarshal(line, v); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	if first["i"] != 0.0 || last["i"] != float64(logHead+logTail+249) || !strings.Contains(gap["msg"].(string), "250 lines left out") {
		t.Errorf("first %v, gap %v, last %v", first["i"], gap["msg"], last["i"])
	}
	if n := len(first["big"].(string)); n > logValueBytes+4 {
		t.Errorf("a %d-byte value was kept", n)
	}
}

func slogTo(l *attemptLog) *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{ReplaceAttr: shortValues}))
}
