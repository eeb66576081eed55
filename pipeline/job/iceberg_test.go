package job_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sluice/pipeline/civil"
	"sluice/pipeline/format/parquet"
	"sluice/pipeline/icetable"
	"sluice/pipeline/icetable/icetabletest"
	"sluice/pipeline/job"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/transform"
)

// hiveRows reads every Parquet file of a Hive output's partitions.
func hiveRows(t *testing.T, out storage.Bucket, w civil.Window) icetabletest.Rows {
	t.Helper()
	var keys []string
	for _, d := range w.Dates() {
		keys = append(keys, partitionFiles(t, out, d.String())...)
	}
	return icetabletest.ParquetFiles(t, out, keys)
}

func icebergStep(t *testing.T, in storage.Reader, out storage.Bucket, spec transform.Spec, w civil.Window, run string) *job.Step {
	t.Helper()
	tb, err := icetable.Open(icetable.Config{Namespace: "segmentlogs", Name: "mobile"}, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newStep(in, mustFolder(t), out, spec, w)
	s.RunID, s.Table = run, tb
	return s
}

func mustFolder(t *testing.T) *filestore.Bucket {
	t.Helper()
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// liveFiles writes the oracle's -files list: the current snapshot's files,
// each with its partition.
func liveFiles(t *testing.T, tb *icetable.Table, root string) string {
	t.Helper()
	refs, err := tb.Files(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range refs {
		fmt.Fprintf(&b, "%s\t%s\n", filepath.Join(root, filepath.FromSlash(f.Key)), f.Date)
	}
	p := filepath.Join(t.TempDir(), "files.tsv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The Iceberg table of a run holds exactly the rows of the Hive output of
// the same input; a second run that rebuilds part of the window replaces
// those partitions in one snapshot, and the first snapshot still reads as
// the first run left it. With SLUICE_ORACLE=/path/to/oracle (refbench) the
// oracle also checks the current snapshot's data files (-files).
func TestIcebergMatchesHive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in, _ := filestore.New(filepath.Join(dir, "in"))
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 1500
	cfg.DuplicateRate, cfg.LateRate = 0.05, 0.1
	sum, err := segmentgen.Generate(context.Background(), in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := genWindow(cfg)
	spec := transform.DefaultSpec()
	spec.ShardBytes = sum.CompressedBytes/4 + 1
	spec.TargetFileBytes = 128 << 10 // several files a date

	hive, _ := filestore.New(filepath.Join(dir, "hive"))
	runJob(t, newStep(in, mustFolder(t), hive, spec, w))
	want := hiveRows(t, hive, w)

	iceDir := filepath.Join(dir, "iceberg")
	ice, _ := filestore.New(iceDir)
	s1 := icebergStep(t, in, ice, spec, w, "run-1")
	r1 := runJob(t, s1)
	if r1.summary.Iceberg == nil || !r1.summary.Iceberg.Landed || r1.summary.Iceberg.SnapshotID == 0 {
		t.Fatalf("run 1's iceberg summary: %+v", r1.summary.Iceberg)
	}
	icetabletest.Same(t, "run 1", icetabletest.Scan(t, s1.Table, 0), want)
	if r1.summary.RowsWritten != int64(len(want)) {
		t.Errorf("run 1 wrote %d rows, the Hive run %d", r1.summary.RowsWritten, len(want))
	}

	// Run 2 rebuilds the last two dates (forced: same input).
	w2 := civil.Window{Start: w.End.AddDays(-1), End: w.End}
	s2 := icebergStep(t, in, ice, spec, w2, "run-2")
	s2.Force = true
	r2 := runJob(t, s2)
	ic := r2.summary.Iceberg
	if ic == nil || !ic.Landed || ic.SnapshotID == r1.summary.Iceberg.SnapshotID || ic.RemovedFiles == 0 || ic.AddedFiles == 0 {
		t.Fatalf("run 2's iceberg summary: %+v", ic)
	}
	icetabletest.Same(t, "run 2", icetabletest.Scan(t, s2.Table, 0), want)
	icetabletest.Same(t, "run 1's snapshot", icetabletest.Scan(t, s2.Table, r1.summary.Iceberg.SnapshotID), want)

	// The folders keep run 1's files of the rebuilt dates (snapshot 1
	// references them); the snapshot has only run 2's.
	refs, err := s2.Table.Files(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, f := range refs {
		live[f.Key] = true
	}
	for _, d := range w2.Dates() {
		keys := partitionFiles(t, ice, d.String())
		n := 0
		for _, k := range keys {
			if live[k] {
				n++
			}
		}
		if n != r2.summary.Files[d.String()] || len(keys) <= n {
			t.Errorf("%s: %d files in the folder, %d of them live; run 2 wrote %d", d, len(keys), n, r2.summary.Files[d.String()])
		}
	}

	// The target file size is raised to 1 MiB: compaction joins each
	// partition's files, now small, into one without a rebuild; the rows
	// stay, and the oracle below checks the joined files.
	before := len(refs)
	cres, err := s2.Table.Compact(context.Background(), icetable.CompactOptions{ID: "compact-after-run-2", Step: "register",
		TargetFileBytes: 1 << 20, KV: parquet.KeyValue(spec.FormatOptions())})
	if err != nil {
		t.Fatal(err)
	}
	if refs, err = s2.Table.Files(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("compaction: %d files, now %d: %+v", before, len(refs), cres)
	if !cres.Landed || cres.Joined != before || cres.Written != len(w.Dates()) || len(refs) != len(w.Dates()) {
		t.Fatalf("compaction of run 1's small files: %+v; %d files, was %d", cres, len(refs), before)
	}
	icetabletest.Same(t, "after the compaction", icetabletest.Scan(t, s2.Table, 0), want)
	icetabletest.Same(t, "run 2's snapshot", icetabletest.Scan(t, s2.Table, ic.SnapshotID), want)

	oracle := os.Getenv("SLUICE_ORACLE")
	if oracle == "" {
		return
	}
	cmd := exec.Command(oracle, "-in", filepath.Join(dir, "in"), "-out", iceDir, "-files", liveFiles(t, s2.Table, iceDir),
		"-start", w.Start.String(), "-end", w.End.String(), "-sample", "1000")
	outb, err := cmd.CombinedOutput()
	t.Logf("oracle:\n%s", outb)
	if err != nil || !strings.Contains(string(outb), "oracle: PASS") {
		t.Errorf("oracle failed: %v", err)
	}
}

// A widening and a new column across three runs of an Iceberg table: each
// run's snapshot holds the table's rows with the widened types (the older
// partitions rewritten in the same snapshot), the new column is a schema
// update, and time travel to the first run's snapshot returns its rows as
// they were written.
func TestIcebergSchemaAcrossRuns(t *testing.T) {
	t.Parallel()
	spec := testSpec()
	in := mustFolder(t)
	out := mustFolder(t)
	tb, err := icetable.Open(icetable.Config{Namespace: "segmentlogs", Name: "mobile"}, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		score  string            // the Iceberg type of properties_score
		values map[string]string // message id -> properties_score as read back
	}{
		{"long", map[string]string{"a": "3"}},
		{"double", map[string]string{"a": "3", "b": "3.5"}},
		{"string", map[string]string{"a": "3", "b": "3.5", "c": "high"}},
	}
	var first int64
	for i, r := range scoreRuns() {
		put(t, in, dayFolder("ios", r.date)+"part.gz", gz(r.lines...))
		s := newStep(in, mustFolder(t), out, spec, window(t, r.date, r.date))
		s.RunID, s.Table = "run-"+r.date, tb
		sum := runJob(t, s).summary
		if sum.Iceberg == nil || !sum.Iceberg.Landed {
			t.Fatalf("run %d: iceberg %+v", i, sum.Iceberg)
		}
		if i == 0 {
			first = sum.Iceberg.SnapshotID
		}
		tbl, err := tb.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f, ok := tbl.Schema().FindFieldByName("properties_score")
		if !ok || f.Type.String() != want[i].score {
			t.Errorf("run %d: properties_score is %v, want %s", i, f.Type, want[i].score)
		}
		_, hasCity := tbl.Schema().FindFieldByName("properties_address_city")
		if hasCity != (i == 2) {
			t.Errorf("run %d: the table has properties_address_city: %v", i, hasCity)
		}
		rows := icetabletest.Scan(t, tb, 0)
		if len(rows) != len(want[i].values) {
			t.Errorf("run %d: %d rows, want %d", i, len(rows), len(want[i].values))
		}
		for id, v := range want[i].values {
			if got := rows[id]["properties_score"]; got != v {
				t.Errorf("run %d: row %s score %q, want %q", i, id, got, v)
			}
			// Converted files keep the date column of the file they rewrite.
			if got, d := rows[id][icetable.DateColumn], map[string]string{"a": "2026-10-01", "b": "2026-10-02", "c": "2026-10-03"}[id]; got != d {
				t.Errorf("run %d: row %s date %q, want %q", i, id, got, d)
			}
		}
		if i > 0 && len(sum.Schema.Converted) != i {
			t.Errorf("run %d: converted %v", i, sum.Schema.Converted)
		}
	}
	old := icetabletest.Scan(t, tb, first)
	if len(old) != 1 || old["a"]["properties_score"] != "3" {
		t.Errorf("the first run's snapshot: %v", old)
	}
}

// BenchmarkJobHiveVsIceberg runs the same job over the same generated
// input into Hive folders and into an Iceberg table, side by side (local
// folders; SLUICE_EVENTS_PER_DAY sets the volume, default 20000 a day for
// 3 days).
func BenchmarkJobHiveVsIceberg(b *testing.B) {
	dir := b.TempDir()
	in, _ := filestore.New(filepath.Join(dir, "in"))
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 20000
	if n, err := strconv.Atoi(os.Getenv("SLUICE_EVENTS_PER_DAY")); err == nil {
		cfg.EventsPerDay = n
	}
	sum, err := segmentgen.Generate(context.Background(), in, cfg)
	if err != nil {
		b.Fatal(err)
	}
	w := genWindow(cfg)
	spec := transform.DefaultSpec()
	spec.ShardBytes = sum.CompressedBytes/8 + 1
	// The two formats alternate, so that the machine's other load falls on
	// both alike.
	var took [2]time.Duration
	var commitMs int64
	b.ResetTimer()
	for i := range b.N {
		for f, format := range []string{"hive", "iceberg"} {
			out, _ := filestore.New(filepath.Join(dir, fmt.Sprintf("%s-%d", format, i)))
			scratch, _ := filestore.New(filepath.Join(dir, fmt.Sprintf("%s-%d-scratch", format, i)))
			s := newStep(in, scratch, out, spec, w)
			if format == "iceberg" {
				tb, err := icetable.Open(icetable.Config{Name: "mobile"}, out, nil)
				if err != nil {
					b.Fatal(err)
				}
				s.Table = tb
			}
			begin := time.Now()
			res := runJob(b, s)
			took[f] += time.Since(begin)
			if res.summary.RowsWritten == 0 {
				b.Fatal("no rows")
			}
			if res.summary.Iceberg != nil {
				commitMs += res.summary.Iceberg.CommitMillis
			}
		}
	}
	b.ReportMetric(took[0].Seconds()/float64(b.N), "hive-s/op")
	b.ReportMetric(took[1].Seconds()/float64(b.N), "iceberg-s/op")
	b.ReportMetric(float64(commitMs)/float64(b.N), "iceberg-commit-ms/op")
	b.ReportMetric(float64(sum.Bytes)/1e6, "input-MB")
}
