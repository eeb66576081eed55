package orchestrator_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"sluice/internal/redisstore"
	"sluice/internal/testenv"
	"sluice/pipeline/job"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// series gathers reg into "name{label=value,…}" → value (a histogram's
// value is its sample count), labels in the order Prometheus sorts them.
func series(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// A job step's figures are counted once, when its Finish ends it; a
// duplicate Finish (a retried or redelivered last task) adds nothing. Every
// series of a loaded step exists at zero before its first end.
func TestStepMetricsCountEachStepEndOnce(t *testing.T) {
	t.Parallel()
	orch, _ := setup(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(orch.Metrics())
	const job1 = "step=mobile-user-daily,workflow=mobile-user"
	before := series(t, reg)
	for _, s := range []string{"sluice_step_rows_written_total{" + job1 + "}", "sluice_step_seconds{state=FAILED,step=segmentlogs-Mobile,workflow=mobile-user}",
		"sluice_step_partitions_total{result=skipped," + job1 + "}"} {
		if v, ok := before[s]; !ok || v != 0 {
			t.Errorf("before any run: %s = %v (present %v), want 0", s, v, ok)
		}
	}

	ctx := context.Background()
	st := start(t, orch)
	ref := func(step string) tasks.StepRef {
		return tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: step}
	}
	for _, step := range []string{"segmentlogs-IOS", "segmentlogs-Android"} {
		if _, err := orch.Finish(ctx, ref(step), workflow.Succeeded, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	sum := &job.Summary{
		InputBytes: 1000, InputBytesCompressed: 300, LinesRead: 10, RowsWritten: 7, Duplicates: 1, OutsideWindow: 1, RepairedUTF8: 2,
		Quarantined: map[string]int64{"invalid_json": 1}, Files: map[string]int{"2024-03-09": 2, "2024-03-10": 1},
		OutputBytes: 500, Rebuilt: map[string]string{"2024-03-09": "new", "2024-03-10": "new"}, Skipped: []string{"2024-03-11"},
	}
	for range 2 {
		if _, err := orch.Finish(ctx, ref("mobile-user-daily"), workflow.Succeeded, sum, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := series(t, reg)
	for s, want := range map[string]float64{
		"sluice_step_input_bytes_total{" + job1 + "}":                                       1000,
		"sluice_step_input_compressed_bytes_total{" + job1 + "}":                            300,
		"sluice_step_input_lines_total{" + job1 + "}":                                       10,
		"sluice_step_rows_written_total{" + job1 + "}":                                      7,
		"sluice_step_duplicates_total{" + job1 + "}":                                        1,
		"sluice_step_outside_window_total{" + job1 + "}":                                    1,
		"sluice_step_quarantined_total{reason=invalid_json," + job1 + "}":                   1,
		"sluice_step_output_bytes_total{" + job1 + "}":                                      500,
		"sluice_step_output_files_total{" + job1 + "}":                                      3,
		"sluice_step_partitions_total{result=rebuilt," + job1 + "}":                         2,
		"sluice_step_partitions_total{result=skipped," + job1 + "}":                         1,
		"sluice_step_seconds{state=SUCCEEDED," + job1 + "}":                                 1,
		"sluice_step_seconds{state=FAILED," + job1 + "}":                                    0,
		"sluice_step_seconds{state=SUCCEEDED,step=segmentlogs-IOS,workflow=mobile-user}":    1,
		"sluice_step_seconds{state=SUCCEEDED,step=segmentlogs-Mobile,workflow=mobile-user}": 0,
	} {
		if got[s] != want {
			t.Errorf("%s = %v, want %v", s, got[s], want)
		}
	}
}

// A cancel ends the running steps: each counts as a CANCELLED step end
// (the dashboard's step ends by state see cancels too).
func TestCancelledStepEndsAreCounted(t *testing.T) {
	t.Parallel()
	orch, _ := setup(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(orch.Metrics())
	const cancelled = "sluice_step_seconds{state=CANCELLED,step=segmentlogs-IOS,workflow=mobile-user}"
	if v, ok := series(t, reg)[cancelled]; !ok || v != 0 {
		t.Fatalf("before: %s = %v (present %v)", cancelled, v, ok)
	}
	st := start(t, orch)
	if _, err := orch.Cancel(context.Background(), st.Run.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if v := series(t, reg)[cancelled]; v != 1 {
		t.Errorf("after a cancel: %s = %v, want 1", cancelled, v)
	}
	if v := series(t, reg)["sluice_step_task_retries_total{step=mobile-user-daily,type=transform:map,workflow=mobile-user}"]; v != 0 {
		t.Errorf("retries of a step that never ran: %v", v)
	}
}

// An Iceberg job's snapshot commit is counted once per step end, by
// result, with its time and the races it lost; the series exist at zero
// from the start.
func TestIcebergCommitMetrics(t *testing.T) {
	t.Parallel()
	orch, in, err := newOrchestratorOf(testenv.RedisDB(t), "mobile-user-iceberg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Close(); in.Close() })
	reg := prometheus.NewRegistry()
	reg.MustRegister(orch.Metrics())
	const step = "step=mobile-user-daily,workflow=mobile-user-iceberg"
	landed, found := "sluice_iceberg_commits_total{result=landed,"+step+"}", "sluice_iceberg_commits_total{result=found,"+step+"}"
	conflicts, seconds := "sluice_iceberg_commit_conflicts_total{"+step+"}", "sluice_iceberg_commit_seconds{"+step+"}"
	before := series(t, reg)
	for _, s := range []string{landed, found, conflicts, seconds} {
		if v, ok := before[s]; !ok || v != 0 {
			t.Errorf("before any run: %s = %v (present %v), want 0", s, v, ok)
		}
	}
	ctx := context.Background()
	st, err := orch.Start(ctx, "mobile-user-iceberg", window, redisstore.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(s string) tasks.StepRef {
		return tasks.StepRef{Workflow: "mobile-user-iceberg", RunID: st.Run.ID, Step: s}
	}
	for _, s := range []string{"segmentlogs-IOS", "segmentlogs-Android"} {
		if _, err := orch.Finish(ctx, ref(s), workflow.Succeeded, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	sum := &job.Summary{Iceberg: &job.IcebergSummary{Table: "segmentlogs.mobile", SnapshotID: 7, Landed: true, Attempts: 3, CommitMillis: 40}}
	for range 2 { // the second Finish is a duplicate: it counts nothing
		if _, err := orch.Finish(ctx, ref("mobile-user-daily"), workflow.Succeeded, sum, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := series(t, reg)
	for s, want := range map[string]float64{landed: 1, found: 0, conflicts: 2, seconds: 1} {
		if got[s] != want {
			t.Errorf("%s = %v, want %v", s, got[s], want)
		}
	}
}
