package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sluice/internal/api"
	"sluice/internal/testenv"
	"sluice/pipeline/bookmark"
	"sluice/pipeline/job"
	"sluice/pipeline/segmentgen"
)

var window = []string{"2026-10-30", "2026-10-31", "2026-11-01"} // 2026-11-01 has 25 hours in Los Angeles

func sampleConfig(eventsPerDay int) segmentgen.Config {
	cfg := segmentgen.DefaultConfig()
	cfg.Seed = 7
	cfg.Start = time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC)
	cfg.Days = 3
	cfg.EventsPerDay = eventsPerDay
	return cfg
}

func TestWorkflowEndToEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newCluster(t)
	sum := c.generate(sampleConfig(3000))
	c.env = append(c.env, "SLUICE_SHARD_BYTES=400000") // several map shards per run

	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	sched := c.start("scheduler", "serve", "-http", addr)
	waitLine(t, ctx, sched, "scheduler to serve", contains("scheduler serving"))
	w1 := c.startWorker("worker")
	w2 := c.startWorker("worker")
	waitLine(t, ctx, w1, "worker 1 to start", contains("worker started"))
	waitLine(t, ctx, w2, "worker 2 to start", contains("worker started"))

	var first api.Run
	if out, err := c.runSchedulerJSON(ctx, &first, "start", "-workflow", "mobile-user", "-start", window[0], "-end", window[2], "-wait"); err != nil {
		t.Fatalf("start -wait: %v\n%s", err, out)
	}
	if first.State != "SUCCEEDED" || first.Window != (api.Window{Start: window[0], End: window[2]}) {
		t.Fatalf("run %s of %v ended %s, want SUCCEEDED of %s..%s", first.ID, first.Window, first.State, window[0], window[2])
	}
	checkOutput(t, c, sum, window)
	before := c.partitionFiles()

	// Bookmarks: a rerun of the same window with unchanged input rebuilds
	// nothing; a forced rerun of one date rebuilds that partition alone, to
	// the same bytes.
	var again api.Run
	if out, err := c.runSchedulerJSON(ctx, &again, "start", "-start", window[0], "-end", window[2], "-wait"); err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	if s := jobSummary(t, again); len(s.Rebuilt) != 0 || !slices.Equal(s.Skipped, window) {
		t.Errorf("rerun with unchanged input: rebuilt %v, skipped %v; want nothing rebuilt, %v skipped", s.Rebuilt, s.Skipped, window)
	}
	var forced api.Run
	if out, err := c.runSchedulerJSON(ctx, &forced, "start", "-start", window[1], "-force", "-wait"); err != nil {
		t.Fatalf("forced rebuild of one date: %v\n%s", err, out)
	}
	if s := jobSummary(t, forced); !maps.Equal(s.Rebuilt, map[string]string{window[1]: bookmark.ReasonForced}) {
		t.Errorf("forced rebuild of %s rebuilt %v", window[1], s.Rebuilt)
	}
	after := c.partitionFiles()
	for date, file := range before {
		if !bytes.Equal(after[date], file) {
			t.Errorf("partition %s changed bytes after a rerun with the same input", date)
		}
	}
	checkOutput(t, c, sum, window)

	// Run history: the three runs, and each of the eight steps of the
	// first, readable from the CLI.
	var history struct{ Runs []api.Run }
	if out, err := c.runSchedulerJSON(ctx, &history, "runs"); err != nil {
		t.Fatalf("runs: %v\n%s", err, out)
	}
	var ids []string
	for _, r := range history.Runs {
		ids = append(ids, r.ID)
		if r.Workflow != "mobile-user" || r.State != "SUCCEEDED" {
			t.Errorf("runs lists %s of %s %s, want mobile-user SUCCEEDED", r.ID, r.Workflow, r.State)
		}
	}
	if want := []string{forced.ID, again.ID, first.ID}; !slices.Equal(ids, want) {
		t.Errorf("runs lists %v, want the newest first: %v", ids, want)
	}
	var show api.Run
	if out, err := c.runSchedulerJSON(ctx, &show, "show", first.ID); err != nil {
		t.Fatalf("show: %v\n%s", err, out)
	}
	var steps []string
	for _, s := range show.Steps {
		steps = append(steps, s.Name)
		if s.State != "SUCCEEDED" {
			t.Errorf("show: step %s %s, want SUCCEEDED", s.Name, s.State)
		}
	}
	if want := []string{"mobile-user-start", "segmentlogs-IOS", "android-crawler-trigger", "segmentlogs-Android",
		"mobile-user-etl-trigger", "mobile-user-daily", "mobile-crawler-trigger", "segmentlogs-Mobile"}; !slices.Equal(steps, want) {
		t.Errorf("show: steps %v, want %v", steps, want)
	}
	if s := jobSummary(t, show); !s.Balanced {
		t.Errorf("job summary does not reconcile: %s", s.Reconciliation)
	}

	// The catalog: raw tables keep the SDKs' differences, the output table
	// has flattened columns and one partition per date.
	store := c.catalogStore()
	ios, err := store.GetTable(ctx, "segmentlogs", "ios")
	if err != nil {
		t.Fatal(err)
	}
	android, err := store.GetTable(ctx, "segmentlogs", "android")
	if err != nil {
		t.Fatal(err)
	}
	iosCtx, _ := ios.Column("context")
	androidCtx, _ := android.Column("context")
	iosScreen, _ := iosCtx.Type.Field("screen")
	androidScreen, _ := androidCtx.Type.Field("screen")
	if _, ok := androidScreen.Type.Field("density"); !ok {
		t.Errorf("android context lacks screen.density: %s", androidCtx.Type)
	}
	if _, ok := iosScreen.Type.Field("density"); ok {
		t.Errorf("ios context has screen.density: %s", iosCtx.Type)
	}
	mobile, err := store.GetTable(ctx, "segmentlogs", "mobile")
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"message_id", "context_device_model", "context_screen_density", "timestamp", "timestamp_utc"} {
		if _, ok := mobile.Column(col); !ok {
			t.Errorf("mobile table lacks column %s", col)
		}
	}
	if _, ok := mobile.Column("integrations"); ok {
		t.Error("mobile table kept integrations")
	}
	parts, err := store.ListPartitions(ctx, "segmentlogs", "mobile")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != len(window) {
		t.Errorf("mobile has %d partitions, want %d", len(parts), len(window))
	}
	for _, p := range parts {
		if date := p.Values[len(p.Values)-1]; p.Rows != sum.ExpectedFor(date) {
			t.Errorf("catalog partition %v: %d rows, want %d", p.Values, p.Rows, sum.ExpectedFor(date))
		}
	}

	// The monitoring UI and the metrics are served.
	for path, want := range map[string]string{
		"/monitoring/": "<html",
		"/metrics":     `sluice_workflow_latest_run_state{state="SUCCEEDED",workflow="mobile-user"} 1`,
		"/healthz":     "ok",
		"/runs":        `"state": "SUCCEEDED"`,
	} {
		body := get(t, "http://"+addr+path)
		if !strings.Contains(body, want) {
			t.Errorf("GET %s: want %q in:\n%.500s", path, want, body)
		}
	}
	done := func(p *proc) int { return p.out.count(contains("task done")) }
	t.Logf("tasks done: worker 1 %d, worker 2 %d", done(w1), done(w2))
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

// A worker SIGKILLed in the middle of a shard loses its lease; asynq's
// recoverer hands the shard to another worker (about a minute later), the
// rerun overwrites the map output, and the run succeeds with every row once.
func TestWorkerKilledMidShard(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newCluster(t)
	sum := c.generate(sampleConfig(6000))
	c.env = append(c.env, "SLUICE_SHARD_BYTES=1500000")

	victim := c.startWorker("worker")
	waitLine(t, ctx, victim, "the first worker to start", contains("worker started"))
	run := c.startRunInBackground(ctx)

	started := waitLine(t, ctx, victim, "a map shard to start", contains("task started", "type=transform:map"))
	taskID := field(started, "id")
	if err := syscall.Kill(-victim.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	killedAt := time.Now()
	if victim.out.count(contains("task done", "id="+taskID)) != 0 {
		t.Fatalf("shard %s finished before the kill; the test did not interrupt it", taskID)
	}

	survivor := c.startWorker("worker")
	waitLine(t, ctx, survivor, "the killed shard to be redone", contains("task done", "id="+taskID, "outcome=ok"))
	t.Logf("killed shard %s redone %s after the kill", taskID, time.Since(killedAt).Round(time.Second))
	if info := c.taskInfo(taskID); info.Retried != 1 {
		t.Errorf("killed shard retried %d times, want 1 (a lapsed lease counts as a retry)", info.Retried)
	}

	awaitSuccess(t, ctx, run)
	checkOutput(t, c, sum, window)
}

// startRunInBackground runs `scheduler start -wait` for the test window
// while the test disturbs the workers; its output arrives on the channel.
func (c *cluster) startRunInBackground(ctx context.Context) <-chan backgroundRun {
	out := make(chan backgroundRun, 1)
	go func() {
		var r backgroundRun
		r.output, r.err = c.runSchedulerJSON(ctx, &r.run, "start", "-workflow", "mobile-user", "-start", window[0], "-end", window[2], "-wait")
		out <- r
	}()
	return out
}

// backgroundRun is how a `scheduler start -wait -o json` ended.
type backgroundRun struct {
	run    api.Run
	output string // besides the JSON: progress and notes
	err    error
}

// stepOf is a step of a run (its JSON view).
func stepOf(t *testing.T, r api.Run, name string) api.Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("run %s has no step %s", r.ID, name)
	return api.Step{}
}

// jobSummary is the summary of the job step of a run.
func jobSummary(t *testing.T, r api.Run) job.Summary {
	t.Helper()
	s := stepOf(t, r, "mobile-user-daily")
	var sum job.Summary
	if err := json.Unmarshal(s.Summary, &sum); err != nil {
		t.Fatalf("run %s: the job's summary: %v\n%s", r.ID, err, s.Summary)
	}
	return sum
}

func awaitSuccess(t *testing.T, ctx context.Context, run <-chan backgroundRun) {
	t.Helper()
	select {
	case r := <-run:
		if r.err != nil || r.run.State != "SUCCEEDED" || r.run.Window != (api.Window{Start: window[0], End: window[2]}) {
			t.Fatalf("run %s of %v ended %s (%v), want SUCCEEDED:\n%s", r.run.ID, r.run.Window, r.run.State, r.err, r.output)
		}
	case <-ctx.Done():
		t.Fatal("run did not end")
	}
}

// field returns the value of key=value in a slog text line.
func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// SIGTERM stops a worker taking tasks; a shard still running when the
// shutdown timeout ends goes back to the queue at once, without counting a
// retry, and another worker redoes it.
func TestWorkerStoppedMidShard(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t)
	sum := c.generate(sampleConfig(6000))
	c.env = append(c.env, "SLUICE_SHARD_BYTES=1500000")

	victim := c.start("worker", "-concurrency", "1", "-http", "", "-task-check-interval", "50ms", "-shutdown-timeout", "50ms")
	waitLine(t, ctx, victim, "the first worker to start", contains("worker started"))
	run := c.startRunInBackground(ctx)
	started := waitLine(t, ctx, victim, "a map shard to start", contains("task started", "type=transform:map"))
	taskID := field(started, "id")
	if err := victim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	stoppedAt := time.Now()
	if victim.out.count(contains("task done", "id="+taskID, "outcome=ok")) != 0 {
		t.Fatalf("shard %s finished before the shutdown timeout; the test did not interrupt it", taskID)
	}
	if victim.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("worker exited %d after SIGTERM, want 0", victim.cmd.ProcessState.ExitCode())
	}

	survivor := c.startWorker("worker")
	waitLine(t, ctx, survivor, "the stopped shard to be redone", contains("task done", "id="+taskID, "outcome=ok"))
	t.Logf("stopped shard %s redone %s after SIGTERM", taskID, time.Since(stoppedAt).Round(100*time.Millisecond))
	if info := c.taskInfo(taskID); info.Retried != 0 {
		t.Errorf("stopped shard retried %d times, want 0 (a shutdown hands the task back)", info.Retried)
	}
	awaitSuccess(t, ctx, run)
	checkOutput(t, c, sum, window)
}

// Two scheduler replicas fire the same schedule tick; the run store lets one
// of them start the run. The schedule fires every minute here, so the test
// waits for the next minute boundary.
func TestTwoSchedulersStartOneRunPerTick(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t)
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	everyMinute := strings.Replace(string(raw), `cron: "0 13 * * *"`, `cron: "* * * * *"`, 1)
	if everyMinute == string(raw) {
		t.Fatal("the example workflow's cron line changed; update this test")
	}
	file := filepath.Join(t.TempDir(), "mobile-user.yaml")
	if err := os.WriteFile(file, []byte(everyMinute), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append(c.env, "SLUICE_WORKFLOWS="+file)

	fired := contains("workflow=mobile-user", "run") // "run started" or "run already active…"
	var replicas []*proc
	for i := 0; i < 2; i++ {
		p := c.start("scheduler", "serve", "-http", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort()))
		waitLine(t, ctx, p, "a scheduler to serve", contains("scheduler serving"))
		replicas = append(replicas, p)
	}
	for _, p := range replicas {
		waitLine(t, ctx, p, "the tick to fire", func(s string) bool {
			return fired(s) && (strings.Contains(s, "run started") || strings.Contains(s, "already active or already started"))
		})
	}
	started := 0
	for _, p := range replicas {
		started += p.out.count(contains("run started", "trigger=mobile-user-start"))
	}
	if started != 1 {
		t.Fatalf("%d replicas started a run for the tick, want exactly 1", started)
	}
	var history struct{ Runs []api.Run }
	if out, err := c.runSchedulerJSON(ctx, &history, "runs"); err != nil {
		t.Fatalf("runs: %v\n%s", err, out)
	}
	if len(history.Runs) != 1 || history.Runs[0].Trigger != "mobile-user-start" {
		t.Fatalf("runs listed: %+v, want one started by mobile-user-start", history.Runs)
	}
}
