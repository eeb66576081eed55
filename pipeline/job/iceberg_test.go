package job_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icetbl "github.com/apache/iceberg-go/table"
	pq "github.com/parquet-go/parquet-go"

	"sluice/pipeline/civil"
	"sluice/pipeline/icetable"
	"sluice/pipeline/job"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/transform"
)

// rowSet is a table's rows by message id, each column's value as text
// ("" for null); the Iceberg partition column is left out (it is in the
// manifests, not in the files).
type rowSet map[string]map[string]string

// hiveRows reads every Parquet file of a Hive output's partitions.
func hiveRows(t *testing.T, out storage.Bucket, w civil.Window) rowSet {
	t.Helper()
	rows := rowSet{}
	for _, d := range w.Dates() {
		for _, k := range partitionFiles(t, out, d.String()) {
			var tb table
			readParquet(t, readAll(t, out, k), &tb)
			for _, r := range tb.rows {
				m := map[string]string{}
				for c, v := range r {
					m[c] = parquetText(v)
				}
				rows.add(t, m)
			}
		}
	}
	return rows
}

func readAll(t *testing.T, b storage.Reader, key string) []byte {
	t.Helper()
	rc, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (rs rowSet) add(t *testing.T, m map[string]string) {
	id := m["message_id"]
	if _, dup := rs[id]; dup {
		t.Errorf("message id %s twice", id)
	}
	rs[id] = m
}

func parquetText(v pq.Value) string {
	switch {
	case v.IsNull():
		return ""
	case v.Kind() == pq.Boolean:
		return strconv.FormatBool(v.Boolean())
	case v.Kind() == pq.Int64:
		return strconv.FormatInt(v.Int64(), 10)
	case v.Kind() == pq.Double:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64)
	}
	return string(v.ByteArray())
}

// icebergRows scans the table's snapshot (0: the current one) with
// iceberg-go.
func icebergRows(t *testing.T, tb *icetable.Table, snapshot int64) rowSet {
	t.Helper()
	tbl, err := tb.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var opts []icetbl.ScanOption
	if snapshot != 0 {
		opts = append(opts, icetbl.WithSnapshotID(snapshot))
	}
	at, err := tbl.Scan(opts...).ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	rows := rowSet{}
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			m := map[string]string{}
			for c, f := range rec.Schema().Fields() {
				if f.Name == icetable.DateColumn {
					continue
				}
				col := rec.Column(c)
				if col.IsNull(i) {
					continue // as parquet-go's reader leaves a null out of the row
				}
				m[f.Name] = arrowText(t, col, i)
			}
			rows.add(t, m)
		}
	}
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func arrowText(t *testing.T, col arrow.Array, i int) string {
	switch a := col.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Timestamp:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	}
	t.Fatalf("column of type %s", col.DataType())
	return ""
}

// sameRows compares two row sets row for row.
func sameRows(t *testing.T, what string, got, want rowSet) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	bad := 0
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("%s: row %s missing", what, id)
		} else {
			for c, v := range w {
				if gv := g[c]; gv != v {
					if bad < 5 {
						t.Errorf("%s: row %s column %s = %q, want %q", what, id, c, gv, v)
					}
					bad++
				}
			}
			for c, v := range g {
				if _, ok := w[c]; !ok {
					t.Errorf("%s: row %s has %s = %q, the Hive row has none", what, id, c, v)
					bad++
				}
			}
		}
		if bad >= 5 {
			t.Fatalf("%s: more differences", what)
		}
	}
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
	sameRows(t, "run 1", icebergRows(t, s1.Table, 0), want)
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
	sameRows(t, "run 2", icebergRows(t, s2.Table, 0), want)
	sameRows(t, "run 1's snapshot", icebergRows(t, s2.Table, r1.summary.Iceberg.SnapshotID), want)

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
