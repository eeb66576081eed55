package icetable_test

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"sluice/internal/testenv"
	"sluice/pipeline/icetable"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/s3store"
)

// publishFiles publishes, for each date, its rows cut into files of the
// given sizes (rows each), as one run.
func publishFiles(t *testing.T, tb *icetable.Table, b storage.Bucket, run string, dates map[string][]int) ([]row, icetable.Result) {
	t.Helper()
	ids, err := tb.EnsureColumns(t.Context(), cols)
	if err != nil {
		t.Fatal(err)
	}
	var all []row
	p := icetable.Publication{RunID: run, Step: "job", Columns: cols}
	for _, d := range slices.Sorted(maps.Keys(dates)) {
		p.Dates = append(p.Dates, d)
		for i, n := range dates[d] {
			rows := rowsOf(d, n, fmt.Sprintf("%s-f%d", run, i))
			all = append(all, rows...)
			key := fmt.Sprintf("year=2026/month=10/date=%s/part-%05d-%s.parquet", d, i, run)
			p.Files = append(p.Files, writeFile(t, b, ids, key, d, rows))
		}
	}
	res, err := tb.Publish(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return all, res
}

func filesByDate(t *testing.T, tb *icetable.Table) map[string][]icetable.FileRef {
	t.Helper()
	files, err := tb.Files(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]icetable.FileRef{}
	for _, f := range files {
		out[f.Date] = append(out[f.Date], f)
	}
	return out
}

// Compaction joins the small files of each partition into one, in one
// snapshot: the same rows, the writer's field ids and metrics kept,
// earlier snapshots still readable; a retried compaction applies nothing
// again, and a partition whose files a run replaced meanwhile is left to
// the run.
func compactTable(t *testing.T, b storage.Bucket, ioProps map[string]string) {
	ctx := t.Context()
	tb, err := icetable.Open(icetable.Config{Name: "events"}, b, ioProps)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2, d3 := "2026-10-29", "2026-10-30", "2026-10-31"
	before, r1 := publishFiles(t, tb, b, "run-1", map[string][]int{d1: {40, 30, 20}, d2: {50}, d3: {10, 10}})
	const target = 1 << 20 // every file here is small
	o := icetable.CompactOptions{ID: "compact-1", Step: "register", TargetFileBytes: target, KV: map[string]string{"writer": "sluice-test"}}
	res, err := tb.Compact(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Landed || res.Joined != 5 || res.Written != 2 || !slices.Equal(res.Partitions, []string{d1, d3}) || len(res.Skipped) != 0 {
		t.Fatalf("compaction: %+v, want 5 files of %s and %s joined into 2", res, d1, d3)
	}
	checkRows(t, "after the compaction", scan(t, tb, 0), before)
	checkRows(t, "run 1's snapshot", scan(t, tb, r1.SnapshotID), before)
	byDate := filesByDate(t, tb)
	for d, want := range map[string]int64{d1: 90, d2: 50, d3: 20} {
		if len(byDate[d]) != 1 || byDate[d][0].Rows != want {
			t.Errorf("partition %s: files %+v, want one of %d rows", d, byDate[d], want)
		}
	}
	joined := byDate[d1][0].Key
	if !strings.Contains(joined, "-compacted-") || !strings.HasPrefix(joined, "year=2026/month=10/date="+d1+"/") {
		t.Errorf("joined file %s: not in its partition's folder, or not named a compaction's", joined)
	}
	checkJoinedFile(t, tb, b, joined)
	snaps, err := tb.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := snaps[len(snaps)-1]
	if !last.Current || last.Operation != "replace" || last.Summary[icetable.CompactionProperty] != "compact-1" || last.ID != res.SnapshotID {
		t.Errorf("the compaction's snapshot: %+v", last)
	}

	// Retried: its snapshot is found, nothing is written or committed.
	objects := countObjects(t, b)
	again, err := tb.Compact(ctx, o)
	if err != nil || again.Landed || again.SnapshotID != res.SnapshotID {
		t.Fatalf("retried compaction: %+v, %v; want snapshot %d found", again, err, res.SnapshotID)
	}
	if n := countObjects(t, b); n != objects {
		t.Errorf("the retried compaction changed the objects: %d, was %d", n, objects)
	}
	// Nothing small is left to join.
	o.ID = "compact-2"
	if none, err := tb.Compact(ctx, o); err != nil || none.Landed || none.Written != 0 {
		t.Fatalf("a second compaction: %+v, %v; want nothing to do", none, err)
	}

	// A run replaces d2 while a compaction of the partitions of run 2
	// (what a registration step compacts) joins d2's and d1's new small
	// files: d2's group is left to the run, d1's lands.
	// d3's small files are another run's: left alone.
	_, _ = publishFiles(t, tb, b, "run-2", map[string][]int{d1: {5, 5, 5}, d2: {7, 7}})
	_, _ = publishFiles(t, tb, b, "run-2b", map[string][]int{d3: {6, 6}})
	if o.Dates, err = tb.RunDates(ctx, "run-2"); err != nil || !slices.Equal(o.Dates, []string{d1, d2}) {
		t.Fatalf("run 2's dates: %v, %v", o.Dates, err)
	}
	o.ID = "compact-3"
	tb.BeforeCompactionCommit(func() { publishFiles(t, tb, b, "run-3", map[string][]int{d2: {9}}) })
	raced, err := tb.Compact(ctx, o)
	tb.BeforeCompactionCommit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !raced.Landed || raced.Joined != 3 || !slices.Equal(raced.Partitions, []string{d1}) || len(raced.Skipped) != 1 || !strings.HasPrefix(raced.Skipped[0], d2) {
		t.Fatalf("compaction racing run 3: %+v, want %s joined and %s skipped", raced, d1, d2)
	}
	byDate = filesByDate(t, tb)
	if len(byDate[d2]) != 1 || byDate[d2][0].Rows != 9 || len(byDate[d1]) != 1 || byDate[d1][0].Rows != 15 || len(byDate[d3]) != 2 {
		t.Errorf("after the race: %s %+v, %s %+v, %s %+v; want run 3's one file, one joined file, run 2b's two files", d2, byDate[d2], d1, byDate[d1], d3, byDate[d3])
	}
	var stale []string
	if err := b.List(ctx, "year=2026/month=10/date="+d2+"/", func(oi storage.ObjectInfo) error {
		if strings.Contains(oi.Key, "-compacted-") {
			stale = append(stale, oi.Key)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(stale) != 0 {
		t.Errorf("the skipped group's joined file was left behind: %v", stale)
	}
}

// checkJoinedFile checks that a joined file carries the table's field ids
// and that its manifest entry has the rows' bounds.
func checkJoinedFile(t *testing.T, tb *icetable.Table, b storage.Bucket, key string) {
	t.Helper()
	tbl, err := tb.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := tbl.Scan().PlanFiles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if !strings.HasSuffix(task.File.FilePath(), key) {
			continue
		}
		if task.File.Count() != 90 || task.File.NullValueCounts()[3] != 18 {
			t.Errorf("joined file: %d rows, %d nulls of n; want 90, 18", task.File.Count(), task.File.NullValueCounts()[3])
		}
		// n runs 0..38 in the first file (39 is null), less in the others.
		lo, hi := task.File.LowerBoundValues()[3], task.File.UpperBoundValues()[3]
		if len(lo) != 8 || len(hi) != 8 || binary.LittleEndian.Uint64(lo) != 0 || binary.LittleEndian.Uint64(hi) != 38 {
			t.Errorf("joined file's bounds of n: %x..%x, want 0..38", lo, hi)
		}
		checkFieldIDs(t, b, key)
		return
	}
	t.Errorf("joined file %s is not in the current snapshot", key)
}

func TestCompactOnFolder(t *testing.T) {
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	compactTable(t, b, nil)
}

func TestIntegrationCompactOnS3(t *testing.T) {
	srv := testenv.StartS3(t)
	opts := s3store.Options{Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	b, err := s3store.New(t.Context(), srv.NewBucket(t), "tables/events", opts)
	if err != nil {
		t.Fatal(err)
	}
	compactTable(t, b, icetable.IOProperties(opts))
}
