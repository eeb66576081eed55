package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sluice/internal/api"
	"sluice/pipeline/job"
	"sluice/tasks"
)

// replay reads a run's layout from `show -o json` and its tasks' seconds
// from worker logs as slog writes them (text and JSON), calibrates the
// dispatch cost to the measured wall time, and predicts faster runs for
// more workers.
func TestReplay(t *testing.T) {
	dir := t.TempDir()
	runID, step := "mobile-user.20261031..20261031.20261101T130000Z.abc123", "mobile-user-daily"
	ref := tasks.StepRef{Workflow: "mobile-user", RunID: runID, Step: step}
	sum := job.Summary{Shards: 4, Layout: []job.DateLayout{{Date: "2026-10-31", Files: 1, Slices: []int{2, 2}, ColumnGroups: 3}}}
	rawSum, _ := json.Marshal(sum)
	dur := 21 + 17*0.5 // the hand graph of pipeline/fleetsim, half a second lost per task
	show := api.Run{ID: runID, Workflow: "mobile-user", Steps: []api.Step{
		{Name: "segmentlogs-IOS", Kind: "crawler"},
		{Name: step, Kind: "job", Summary: rawSum, DurationSeconds: &dur},
	}}
	data, _ := json.Marshal(show)
	showPath := filepath.Join(dir, "show.json")
	if err := os.WriteFile(showPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ids := []string{tasks.PlanID(ref), tasks.SplitID(ref), tasks.CommitID(ref, "2026-10-31")}
	for i := range 4 {
		ids = append(ids, tasks.MapID(ref, i), tasks.ReduceID(ref, "2026-10-31", i))
	}
	for f := range 6 {
		ids = append(ids, tasks.EncodeID(ref, "2026-10-31", f))
	}
	var text, js bytes.Buffer
	for i, id := range ids {
		secs := 1.0
		if strings.Contains(id, ":map:") {
			secs = 2
		}
		h := slog.Handler(slog.NewTextHandler(&text, nil))
		if i%2 == 1 {
			h = slog.NewJSONHandler(&js, nil)
		}
		l := slog.New(h)
		l.Info("task done", "type", "transform:x", "id", id, "outcome", "ok", "seconds", secs)
		// A failed attempt and another run's task are not counted.
		l.Info("task done", "type", "transform:x", "id", id, "outcome", "error", "seconds", 99.0)
		l.Info("task done", "type", "transform:x", "id", strings.Replace(id, "abc123", "zzz", 1), "outcome", "ok", "seconds", 99.0)
	}
	logs := []string{filepath.Join(dir, "w1.log"), filepath.Join(dir, "w2.log")}
	for i, b := range [][]byte{text.Bytes(), js.Bytes()} {
		if err := os.WriteFile(logs[i], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var out bytes.Buffer
	args := append([]string{"-run", showPath, "-measured-workers", "1", "-workers", "1,2,100", "-o", "json"}, logs...)
	if err := replay(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	var res replayResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Tasks != 17 || res.DispatchSeconds < 0.499 || res.DispatchSeconds > 0.501 {
		t.Fatalf("%d tasks, dispatch %v s; want 17 and 0.5", res.Tasks, res.DispatchSeconds)
	}
	if p := res.Predictions[0]; p.Workers != 1 || p.Seconds < dur-0.01 || p.Seconds > dur+0.01 {
		t.Errorf("one worker: %+v, want the measured %v s", p, dur)
	}
	if p := res.Predictions[2]; p.SpeedUp <= res.Predictions[1].SpeedUp || p.Seconds < 7 {
		t.Errorf("predictions %+v", res.Predictions)
	}
	// A log missing tasks is refused, naming them.
	err := replay(context.Background(), []string{"-run", showPath, logs[0]}, &out)
	if err == nil || !strings.Contains(err.Error(), "not measured") {
		t.Errorf("half the log: %v", err)
	}
}
