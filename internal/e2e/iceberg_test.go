package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sluice/internal/testenv"
	"sluice/pipeline/icetable"
	"sluice/pipeline/icetable/icetabletest"
	"sluice/pipeline/storage"
)

// icebergTable opens the Iceberg table workflows/mobile-user-iceberg.yaml
// writes in the cluster's lake.
func (c *cluster) icebergTable() *icetable.Table {
	c.t.Helper()
	tb, err := icetable.Open(icetable.Config{Namespace: "segmentlogs", Name: "mobile"}, c.bucket("s3://lake/mobile_user_iceberg"), icetable.IOProperties(c.s3opt))
	if err != nil {
		c.t.Fatal(err)
	}
	return tb
}

// hiveRows reads the Hive table mobile-user writes, row for row.
func (c *cluster) hiveRows() icetabletest.Rows {
	c.t.Helper()
	out := c.bucket("s3://lake/mobile_user")
	keys, err := storage.ListKeys(context.Background(), out, "year=", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return icetabletest.ParquetFiles(c.t, out, keys)
}

// The shipped Iceberg workflow, run by worker processes over versitygw,
// commits a table that holds exactly the rows of the Hive workflow's
// output of the same input; a forced rebuild of one date commits a second
// snapshot; rollback of that run returns the first; the registration step
// and scheduler show name the snapshots; `iceberg compact` joins the
// runs' small files, rows unchanged.
func TestIcebergWorkflowEndToEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newCluster(t)
	c.env = append(c.env, "SLUICE_WORKFLOWS="+filepath.Join(repoRoot(), "workflows"), "SLUICE_SHARD_BYTES=400000", "SLUICE_TARGET_FILE_BYTES=131072")
	sum := c.generate(sampleConfig(2000))

	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	sched := c.start("scheduler", "serve", "-http", addr)
	waitLine(t, ctx, sched, "scheduler to serve", contains("scheduler serving"))
	w1, w2 := c.startWorker("worker"), c.startWorker("worker")
	waitLine(t, ctx, w1, "worker 1 to start", contains("worker started"))
	waitLine(t, ctx, w2, "worker 2 to start", contains("worker started"))

	for _, wf := range []string{"mobile-user", "mobile-user-iceberg"} {
		out, err := c.runScheduler(ctx, "start", "-workflow", wf, "-start", window[0], "-end", window[2], "-wait")
		if err != nil || !strings.Contains(out, "SUCCEEDED, window 2026-10-30..2026-11-01") {
			t.Fatalf("%s: %v\n%s", wf, err, out)
		}
	}
	want := c.hiveRows()
	var total int64
	for _, d := range window {
		total += sum.ExpectedFor(d)
	}
	if int64(len(want)) != total {
		t.Fatalf("the Hive table has %d rows, the generator says %d", len(want), total)
	}
	tb := c.icebergTable()
	icetabletest.Same(t, "iceberg table after run 1", icetabletest.Scan(t, tb, 0), want)
	snaps, err := tb.Snapshots(ctx)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots after one run: %+v, %v", snaps, err)
	}
	first := snaps[0]
	runs, err := c.runScheduler(ctx, "runs")
	if err != nil || !strings.Contains(runs, first.RunID) {
		t.Fatalf("runs: the snapshot's run %s is not the workflow's run: %v\n%s", first.RunID, err, runs)
	}
	show, err := c.runScheduler(ctx, "show", first.RunID)
	if err != nil || !strings.Contains(show, fmt.Sprintf("iceberg: table segmentlogs.mobile snapshot %d committed", first.ID)) ||
		!strings.Contains(show, fmt.Sprintf("iceberg table segmentlogs.mobile at snapshot %d", first.ID)) {
		t.Errorf("show does not name the snapshot %d: %v\n%s", first.ID, err, show)
	}
	if page := get(t, "http://"+addr+"/console/runs/"+url.PathEscape(first.RunID)); !strings.Contains(page, fmt.Sprintf("snapshot <code>%d</code> committed", first.ID)) {
		t.Errorf("the console's run page does not name snapshot %d", first.ID)
	}
	runOracleOnSnapshot(t, c, tb)

	// A dry run plans as for Hive: nothing to rebuild, nothing changes.
	dry, err := c.runScheduler(ctx, "start", "-workflow", "mobile-user-iceberg", "-start", window[0], "-end", window[2], "-dry-run")
	if err != nil || strings.Contains(dry, "rebuild (") || strings.Count(dry, "  keep") != len(window) {
		t.Errorf("dry run after the run: %v\n%s", err, dry)
	}

	// A forced rebuild of one date: a second snapshot, the same rows.
	forced, err := c.runScheduler(ctx, "start", "-workflow", "mobile-user-iceberg", "-start", window[1], "-force", "-wait")
	if err != nil || !strings.Contains(forced, "date=2026-10-31  rebuilt (forced)") {
		t.Fatalf("forced rebuild: %v\n%s", err, forced)
	}
	icetabletest.Same(t, "iceberg table after the forced rebuild", icetabletest.Scan(t, tb, 0), want)
	listing, err := c.runScheduler(ctx, "iceberg", "snapshots")
	if err != nil || strings.Count(listing, "segmentlogs.mobile") != 1 || !strings.Contains(listing, "2 snapshots") {
		t.Fatalf("iceberg snapshots: %v\n%s", err, listing)
	}
	snaps, err = tb.Snapshots(ctx)
	if err != nil || len(snaps) != 2 || !snaps[1].Current {
		t.Fatalf("snapshots after the forced rebuild: %+v, %v", snaps, err)
	}
	second := snaps[1]
	if second.Summary["sluice.dates"] != window[1] || second.Summary["deleted-data-files"] == "" {
		t.Errorf("the forced rebuild's snapshot: %v", second.Summary)
	}

	// Roll the forced run back: the first snapshot is current again.
	rb, err := c.runScheduler(ctx, "iceberg", "rollback", "-run", second.RunID)
	if err != nil || !strings.Contains(rb, fmt.Sprintf("snapshot %d is current", first.ID)) {
		t.Fatalf("rollback: %v\n%s", err, rb)
	}
	snaps, err = tb.Snapshots(ctx)
	if err != nil || !snaps[0].Current {
		t.Fatalf("after rollback: %+v, %v", snaps, err)
	}
	icetabletest.Same(t, "iceberg table after rollback", icetabletest.Scan(t, tb, 0), want)

	// The runs wrote files of about 128 KiB; with the target raised to
	// 8 MiB, `iceberg compact` joins each date's into one, in one snapshot.
	files, err := tb.Files(ctx)
	if err != nil || len(files) <= len(window) {
		t.Fatalf("before the compaction: %d files, %v; want several a date", len(files), err)
	}
	env := c.env
	c.env = append(slices.Clone(env), "SLUICE_TARGET_FILE_BYTES=8388608")
	compacted, err := c.runScheduler(ctx, "iceberg", "compact")
	c.env = env
	if err != nil || !strings.Contains(compacted, fmt.Sprintf("%d small files joined into %d files", len(files), len(window))) || !strings.Contains(compacted, "in 3 partitions") {
		t.Fatalf("iceberg compact: %v\n%s", err, compacted)
	}
	if after, err := tb.Files(ctx); err != nil || len(after) != len(window) {
		t.Errorf("after the compaction: %d files of %d, %v", len(after), len(files), err)
	}
	icetabletest.Same(t, "iceberg table after the compaction", icetabletest.Scan(t, tb, 0), want)
	if listing, err := c.runScheduler(ctx, "iceberg", "snapshots"); err != nil || !strings.Contains(listing, "replace") || !strings.Contains(listing, "compaction cli-") {
		t.Errorf("iceberg snapshots after the compaction: %v\n%s", err, listing)
	}
	runOracleOnSnapshot(t, c, tb)
}

// runOracleOnSnapshot checks the current snapshot's data files with the
// independent oracle of ../shared/refbench when SLUICE_ORACLE names its
// binary (-files: the folders also keep files of older snapshots).
func runOracleOnSnapshot(t *testing.T, c *cluster, tb *icetable.Table) {
	bin := os.Getenv("SLUICE_ORACLE")
	if bin == "" {
		return
	}
	refs, err := tb.Files(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(c.s3.Dir, "lake", "mobile_user_iceberg")
	var b strings.Builder
	for _, f := range refs {
		fmt.Fprintf(&b, "%s\t%s\n", filepath.Join(root, filepath.FromSlash(f.Key)), f.Date)
	}
	list := filepath.Join(t.TempDir(), "files.tsv")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-in", filepath.Join(c.s3.Dir, "raw"), "-out", root, "-files", list,
		"-start", window[0], "-end", window[2]).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("oracle on the snapshot's files: %s", lines[len(lines)-1])
	if err != nil || !strings.Contains(string(out), "oracle: PASS") {
		t.Errorf("oracle: %v\n%s", err, out)
	}
}

// startIcebergRun runs `scheduler start -wait` of the Iceberg workflow
// over the test window in the background.
func (c *cluster) startIcebergRun(ctx context.Context, args ...string) <-chan string {
	out := make(chan string, 1)
	go func() {
		text, err := c.runScheduler(ctx, append([]string{"start", "-workflow", "mobile-user-iceberg", "-start", window[0], "-end", window[2], "-wait"}, args...)...)
		if err != nil {
			text += "\nexit: " + err.Error()
		}
		out <- text
	}()
	return out
}

// checkSnapshot checks that the table's current snapshot holds the
// generator's rows, date by date, and that each run in runs committed
// exactly one snapshot.
func checkSnapshot(t *testing.T, tb *icetable.Table, rows map[string]int64, runs []string) {
	t.Helper()
	files, err := tb.Files(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, f := range files {
		got[f.Date] += f.Rows
	}
	for d, n := range rows {
		if got[d] != n {
			t.Errorf("date %s: %d rows in the snapshot, want %d", d, got[d], n)
		}
	}
	if len(got) != len(rows) {
		t.Errorf("the snapshot has dates %v, want %v", got, rows)
	}
	snaps, err := tb.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range snaps {
		ids = append(ids, s.RunID)
	}
	if !slices.Equal(ids, runs) {
		t.Errorf("snapshots of runs %v, want one each of %v", ids, runs)
	}
}

// icebergKillCluster is a cluster running the Iceberg workflow over a
// sample, with what the kill tests need: the rows each date must hold, the
// table, and how to SIGKILL a worker and read a run id.
type icebergKillCluster struct {
	*cluster
	want map[string]int64
	tb   *icetable.Table
}

func newIcebergKillCluster(t *testing.T) *icebergKillCluster {
	c := newCluster(t)
	c.env = append(c.env, "SLUICE_WORKFLOWS="+filepath.Join(repoRoot(), "workflows", "mobile-user-iceberg.yaml"), "SLUICE_SHARD_BYTES=1500000")
	sum := c.generate(sampleConfig(4000))
	want := map[string]int64{}
	for _, d := range window {
		want[d] = sum.ExpectedFor(d)
	}
	return &icebergKillCluster{cluster: c, want: want, tb: c.icebergTable()}
}

func (c *icebergKillCluster) kill(p *proc) {
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	<-p.done
}

func (c *icebergKillCluster) runID(out string) string {
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "mobile-user-iceberg.") {
			return strings.TrimSuffix(f, ":")
		}
	}
	c.t.Fatalf("no run id in:\n%s", out)
	return ""
}

// A worker SIGKILLed during a reduce leaves the table without the run's
// snapshot until the recovered task lets the run finish, which commits it
// once. (Each kill test waits for asynq's lease to lapse, about a minute:
// they are two tests so that the waits overlap.)
func TestIcebergWorkerKilledInAReduce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newIcebergKillCluster(t)
	victim := c.startWorker("worker")
	waitLine(t, ctx, victim, "the first worker to start", contains("worker started"))
	run := c.startIcebergRun(ctx)
	waitLine(t, ctx, victim, "a reduce to start", contains("task started", "type=transform:reduce"))
	c.kill(victim)
	if snaps, err := c.tb.Snapshots(ctx); err == nil && len(snaps) != 0 {
		t.Fatalf("the table has %d snapshots before the run's commit", len(snaps))
	}
	survivor := c.startWorker("worker")
	waitLine(t, ctx, survivor, "the survivor to start", contains("worker started"))
	out := <-run
	if !strings.Contains(out, "SUCCEEDED") {
		t.Fatalf("run:\n%s", out)
	}
	checkSnapshot(t, c.tb, c.want, []string{c.runID(out)})
}

// A worker SIGKILLed right after its commit task committed the snapshot
// leaves the table at that snapshot, and the retried task recognises it
// and commits nothing again: one snapshot per run.
func TestIcebergWorkerKilledAfterTheCommit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newIcebergKillCluster(t)
	w := c.startWorker("worker")
	waitLine(t, ctx, w, "the first worker to start", contains("worker started"))
	out := <-c.startIcebergRun(ctx)
	if !strings.Contains(out, "SUCCEEDED") {
		t.Fatalf("run 1:\n%s", out)
	}
	first := c.runID(out)
	c.kill(w)

	victim := c.startWorker("worker")
	waitLine(t, ctx, victim, "the victim to start", contains("worker started"))
	run := c.startIcebergRun(ctx, "-force")
	committed := waitLine(t, ctx, victim, "the snapshot's commit", contains("iceberg snapshot committed", "landed=true"))
	c.kill(victim)
	second := field(committed, "run")
	taskDone := victim.out.count(contains("task done", "type=transform:commit", "mobile_user_daily:commit")) > 0
	survivor := c.startWorker("worker")
	waitLine(t, ctx, survivor, "the survivor to start", contains("worker started"))
	out = <-run
	if !strings.Contains(out, "SUCCEEDED") {
		t.Fatalf("run 2:\n%s", out)
	}
	if second != c.runID(out) {
		t.Fatalf("the commit logged run %s, the run is %s", second, c.runID(out))
	}
	checkSnapshot(t, c.tb, c.want, []string{first, second})
	if again := survivor.out.count(contains("iceberg snapshot committed", "landed=false")); again > 0 {
		t.Logf("the retried commit task found its snapshot (%d times) and committed nothing", again)
	} else {
		t.Logf("the commit task's state at the kill: task done logged %v; no retry of the publish was needed", taskDone)
	}
}
