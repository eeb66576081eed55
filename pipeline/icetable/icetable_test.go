package icetable_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sluice/pipeline/format"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"sluice/internal/testenv"
	"sluice/pipeline/column"
	"sluice/pipeline/format/parquet"
	"sluice/pipeline/icetable"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/s3store"
)

var cols = []icetable.Column{
	{Name: "event", Type: column.TypeString},
	{Name: "n", Type: column.TypeBigint},
}

// row is one row as the tests write and read it: date, event, n.
type row struct {
	date, event string
	n           int64
}

// writeFile writes rows of one date as Sluice does: a fragment per column
// group (here one per column), assembled by icetable.Assemble into the
// published file. It returns the file's description.
func writeFile(t testing.TB, b storage.Bucket, ids map[string]int, key, date string, rows []row) icetable.DataFile {
	t.Helper()
	ctx := t.Context()
	ev := parquet.NewValues(parquet.String)
	n := parquet.NewValues(parquet.Int64)
	for _, r := range rows {
		ev.AppendString([]byte(r.event))
		if r.n < 0 {
			n.AppendNulls(1)
		} else {
			n.AppendInt(r.n)
		}
	}
	var refs []format.FragmentRef
	for i, c := range []struct {
		col parquet.Column
		v   *parquet.Values
	}{{parquet.Column{Name: "event", Type: parquet.String}, ev}, {parquet.Column{Name: "n", Type: parquet.Int64}, n}} {
		var buf bytes.Buffer
		w := parquet.NewWriter(&buf, []parquet.Column{c.col}, parquet.Options{})
		if err := w.WriteRowGroup([]*parquet.Values{c.v}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		fk := fmt.Sprintf("_staging/%s.frag%d", key, i)
		if err := b.Put(ctx, fk, bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, format.FragmentRef{Key: fk, Size: int64(buf.Len())})
	}
	sections, df, err := icetable.Assemble(ctx, b, [][]format.FragmentRef{refs}, ids, nil, date)
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Compose(ctx, b, key, sections); err != nil {
		t.Fatal(err)
	}
	df.Key, df.Date = key, date
	return df
}

// scan reads the table's rows at snapshot id (0: the current one), in
// order; the date comes from the partition of each file.
func scan(t *testing.T, tb *icetable.Table, id int64) []row {
	t.Helper()
	tbl, err := tb.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var opts []table.ScanOption
	if id != 0 {
		opts = append(opts, table.WithSnapshotID(id))
	}
	at, err := tbl.Scan(opts...).ToArrowTable(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	var out []row
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		idx := func(name string) int {
			f := rec.Schema().FieldIndices(name)
			if len(f) != 1 {
				t.Fatalf("column %s: %v in %s", name, f, rec.Schema())
			}
			return f[0]
		}
		ev := rec.Column(idx("event")).(*array.String)
		n := rec.Column(idx("n")).(*array.Int64)
		date := rec.Column(idx(icetable.DateColumn))
		for i := range int(rec.NumRows()) {
			r := row{event: ev.Value(i), n: -1}
			if n.IsValid(i) {
				r.n = n.Value(i)
			}
			if date.IsValid(i) {
				r.date = date.(*array.String).Value(i)
			}
			out = append(out, r)
		}
	}
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].event < out[j].event })
	return out
}

func rowsOf(date string, n int, tag string) []row {
	out := make([]row, n)
	for i := range out {
		out[i] = row{date: date, event: fmt.Sprintf("%s-%s-%03d", date, tag, i), n: int64(i)}
		if i%5 == 4 {
			out[i].n = -1 // null
		}
	}
	return out
}

// publishRun writes every date's rows as one file and publishes them.
func publishRun(t *testing.T, tb *icetable.Table, b storage.Bucket, run string, dates map[string][]row) icetable.Result {
	t.Helper()
	ids, err := tb.EnsureColumns(t.Context(), cols)
	if err != nil {
		t.Fatal(err)
	}
	p := icetable.Publication{RunID: run, Step: "job", Columns: cols}
	for _, d := range slices.Sorted(maps.Keys(dates)) {
		p.Dates = append(p.Dates, d)
		if len(dates[d]) == 0 {
			continue
		}
		key := fmt.Sprintf("data/date=%s/part-00000-%s.parquet", d, run)
		p.Files = append(p.Files, writeFile(t, b, ids, key, d, dates[d]))
	}
	res, err := tb.Publish(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func checkRows(t *testing.T, what string, got, want []row) {
	t.Helper()
	want = slices.Clone(want)
	sort.Slice(want, func(i, j int) bool { return want[i].event < want[j].event })
	if !slices.Equal(got, want) {
		t.Errorf("%s: %d rows, want %d\n got %v\nwant %v", what, len(got), len(want), head(got), head(want))
	}
}

func head(rs []row) []row { return rs[:min(len(rs), 4)] }

func exercise(t *testing.T, b storage.Bucket, ioProps map[string]string) {
	exerciseWith(t, b, ioProps, icetable.CatalogConfig{})
}

func exerciseWith(t *testing.T, b storage.Bucket, ioProps map[string]string, cat icetable.CatalogConfig) {
	ctx := t.Context()
	cfg := icetable.Config{Name: "events", SnapshotMaxAge: 1, RetainLast: 1, Catalog: cat}
	tb, err := icetable.Open(cfg, b, ioProps)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2, d3 := "2026-10-30", "2026-10-31", "2026-11-01"
	run1 := map[string][]row{d1: rowsOf(d1, 30, "a"), d2: rowsOf(d2, 20, "a")}
	r1 := publishRun(t, tb, b, "run-1", run1)
	if !r1.Landed || r1.Added != 2 || r1.Removed != 0 {
		t.Fatalf("run 1: %+v", r1)
	}
	checkRows(t, "after run 1", scan(t, tb, 0), slices.Concat(run1[d1], run1[d2]))
	checkMetrics(t, tb, b)

	// Run 2 rebuilds d2 and adds d3: d1 stays as run 1 left it.
	run2 := map[string][]row{d2: rowsOf(d2, 25, "b"), d3: rowsOf(d3, 5, "b")}
	r2 := publishRun(t, tb, b, "run-2", run2)
	if !r2.Landed || r2.Added != 2 || r2.Removed != 1 {
		t.Fatalf("run 2: %+v", r2)
	}
	checkRows(t, "after run 2", scan(t, tb, 0), slices.Concat(run1[d1], run2[d2], run2[d3]))

	// A retried commit of run 2 finds its snapshot and applies nothing.
	again, err := tb.Publish(ctx, icetable.Publication{RunID: "run-2", Step: "job", Columns: cols, Dates: []string{d2}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Landed || again.SnapshotID != r2.SnapshotID {
		t.Fatalf("retried run 2: %+v, want its snapshot %d not landed again", again, r2.SnapshotID)
	}

	// Time travel to run 1's snapshot.
	checkRows(t, "run 1's snapshot", scan(t, tb, r1.SnapshotID), slices.Concat(run1[d1], run1[d2]))

	snaps, err := tb.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[0].RunID != "run-1" || snaps[1].RunID != "run-2" || !snaps[1].Current {
		t.Fatalf("snapshots: %+v", snaps)
	}

	// Roll run 2 back: run 1's snapshot is current again.
	to, err := tb.RollbackRun(ctx, "run-2")
	if err != nil {
		t.Fatal(err)
	}
	if to != r1.SnapshotID {
		t.Fatalf("rolled back to %d, want %d", to, r1.SnapshotID)
	}
	checkRows(t, "after rollback", scan(t, tb, 0), slices.Concat(run1[d1], run1[d2]))

	// Two runs of other windows committing at once both land.
	var wg sync.WaitGroup
	res := make([]icetable.Result, 2)
	ids, err := tb.EnsureColumns(ctx, cols)
	if err != nil {
		t.Fatal(err)
	}
	pubs := make([]icetable.Publication, 2)
	for i, d := range []string{"2026-09-01", "2026-09-15"} {
		key := fmt.Sprintf("data/date=%s/part-00000-c%d.parquet", d, i)
		pubs[i] = icetable.Publication{RunID: fmt.Sprintf("run-c%d", i), Step: "job", Columns: cols, Dates: []string{d},
			Files: []icetable.DataFile{writeFile(t, b, ids, key, d, rowsOf(d, 3, "c"))}}
	}
	errs := make([]error, 2)
	for i := range pubs {
		wg.Go(func() { res[i], errs[i] = tb.Publish(ctx, pubs[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || !res[i].Landed {
			t.Fatalf("concurrent run %d: %+v, %v", i, res[i], err)
		}
	}
	t.Logf("concurrent commits took %d and %d attempts", res[0].Attempts, res[1].Attempts)
	got := scan(t, tb, 0)
	if len(got) != 30+20+3+3 {
		t.Fatalf("after the concurrent runs: %d rows, want %d", len(got), 56)
	}

	// Expiry keeps the newest snapshot and deletes the files only the
	// expired ones referenced: run 2's files (rolled back) among them.
	n, err := tb.Expire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Fatalf("expired %d snapshots", n)
	}
	if _, err := b.Stat(ctx, "data/date="+d2+"/part-00000-run-2.parquet"); err == nil {
		t.Errorf("run 2's file is still there after expiry")
	}
	if _, err := b.Stat(ctx, "data/date="+d1+"/part-00000-run-1.parquet"); err != nil {
		t.Errorf("run 1's file, still current: %v", err)
	}
	if got2 := scan(t, tb, 0); !slices.Equal(got, got2) {
		t.Errorf("expiry changed the current rows")
	}

	// A file assembled for a commit that never landed is an orphan: it
	// goes once old enough; the table's files and Sluice's own stay.
	ids, err = tb.EnsureColumns(ctx, cols)
	if err != nil {
		t.Fatal(err)
	}
	orphan := "year=2026/month=10/date=2026-10-30/part-00000-lost.parquet"
	live := "year=2026/month=10/date=2026-10-30/part-00000-live.parquet"
	writeFile(t, b, ids, orphan, d1, rowsOf(d1, 2, "lost"))
	lf := writeFile(t, b, ids, live, d1, rowsOf(d1, 2, "live"))
	if _, err := tb.Publish(ctx, icetable.Publication{RunID: "run-live", Step: "job", Columns: cols, Dates: []string{"2026-08-01"}, Files: []icetable.DataFile{func() icetable.DataFile { lf.Date = "2026-08-01"; return lf }()}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "_sluice/other.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if gone, err := tb.RemoveOrphans(ctx, time.Hour); err != nil || len(gone) != 0 {
		t.Fatalf("orphans younger than an hour: removed %v, %v", gone, err)
	}
	gone, err := tb.RemoveOrphans(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gone, []string{orphan}) {
		t.Errorf("removed %v, want only %s", gone, orphan)
	}
	keep := []string{live, "_sluice/other.json"}
	if cat.Type == "" {
		keep = append(keep, icetable.CatalogKey)
	}
	for _, k := range keep {
		if _, err := b.Stat(ctx, k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if !strings.HasPrefix(tb.Location(), b.Location()[:5]) {
		t.Errorf("location %s", tb.Location())
	}
}

// checkMetrics checks that the manifests carry the writer's bounds (a
// scan for a value outside them plans no file, one inside plans its
// file) and that the Parquet files carry the table's field ids.
func checkMetrics(t *testing.T, tb *icetable.Table, b storage.Bucket) {
	t.Helper()
	tbl, err := tb.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	plan := func(e iceberg.BooleanExpression) []table.FileScanTask {
		tasks, err := tbl.Scan(table.WithRowFilter(e)).PlanFiles(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return tasks
	}
	if n := len(plan(iceberg.EqualTo(iceberg.Reference("event"), "zzz"))); n != 0 {
		t.Errorf("a scan for an event above every bound plans %d files", n)
	}
	if n := len(plan(iceberg.GreaterThan(iceberg.Reference("n"), int64(1000)))); n != 0 {
		t.Errorf("a scan for n above every bound plans %d files", n)
	}
	tasks := plan(iceberg.EqualTo(iceberg.Reference("event"), "2026-10-31-a-003"))
	if len(tasks) != 1 {
		t.Fatalf("a scan for one event plans %d files, want 1", len(tasks))
	}
	f := tasks[0].File
	if f.Count() != 20 || f.NullValueCounts()[3] != 4 || f.ValueCounts()[3] != 20 {
		t.Errorf("file %s: %d rows, n's nulls %d of %d values, want 20, 4 of 20", f.FilePath(), f.Count(), f.NullValueCounts()[3], f.ValueCounts()[3])
	}
	key := strings.TrimPrefix(f.FilePath(), tb.Location()+"/")
	info, err := b.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != f.FileSizeBytes() {
		t.Errorf("file %s is %d bytes, the manifest says %d", key, info.Size, f.FileSizeBytes())
	}
	checkFieldIDs(t, b, key)
	if lo, hi := f.LowerBoundValues()[1], f.UpperBoundValues()[1]; string(lo) != "2026-10-31" || string(hi) != "2026-10-31" {
		t.Errorf("the date column's bounds: %q..%q", lo, hi)
	}
}

// checkFieldIDs checks that the Parquet file at key carries the table's
// field ids: date 1, event 2, n 3.
func checkFieldIDs(t *testing.T, b storage.Bucket, key string) {
	t.Helper()
	info, err := b.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.ReadFragment(t.Context(), b, key, info.Size)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int32{}
	for _, e := range pf.Footer().Schema[1:] {
		got[e.Name] = e.FieldID
	}
	if got[icetable.DateColumn] != 1 || got["event"] != 2 || got["n"] != 3 || len(got) != 3 {
		t.Errorf("field ids in %s: %v, want date 1, event 2, n 3", key, got)
	}
}

func TestTableOnFolder(t *testing.T) {
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, b, nil)
}

func TestIntegrationTableOnS3(t *testing.T) {
	srv := testenv.StartS3(t)
	bucket := srv.NewBucket(t)
	opts := s3store.Options{Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	b, err := s3store.New(context.Background(), bucket, "tables/events", opts)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, b, icetable.IOProperties(opts))
}
