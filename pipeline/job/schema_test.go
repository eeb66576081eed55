package job_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"sluice/pipeline/catalog"
	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/crawl"
	"sluice/pipeline/fault"
	"sluice/pipeline/job"
	"sluice/pipeline/job/jobtest"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

// schemaRun is one run of a sequence over the same table: its window's
// only date, and the lines of its one input object.
type schemaRun struct {
	date  string
	lines []string
}

// scoreRuns is a field that is an integer in one run, a decimal in a later
// one and a string in a third, each run a different window; the third
// also brings a new nested field.
func scoreRuns() []schemaRun {
	return []schemaRun{
		{"2026-10-01", []string{ev("a", "2026-10-01T18:00:00Z", `"properties":{"score":3,"name":"x"}`)}},
		{"2026-10-02", []string{ev("b", "2026-10-02T18:00:00Z", `"properties":{"score":3.5}`)}},
		{"2026-10-03", []string{ev("c", "2026-10-03T18:00:00Z", `"properties":{"score":"high","address":{"city":"Oslo"}}`)}},
	}
}

// runSeries runs each run as its own job step (its own run id) over one
// input and output, and calls check after each.
func runSeries(t *testing.T, spec transform.Spec, runs []schemaRun, check func(i int, s *job.Step, sum *job.Summary)) {
	t.Helper()
	in, out := memstore.New(), memstore.New()
	for i, r := range runs {
		put(t, in, dayFolder("ios", r.date)+"part.gz", gz(r.lines...))
		s := newStep(in, memstore.New(), out, spec, window(t, r.date, r.date))
		s.RunID = "run-" + r.date
		check(i, s, runJob(t, s).summary)
	}
}

// tableAgrees checks that every file of every partition has, for every
// column, the table schema's type, and that a crawl of the table declares
// exactly those types.
func tableAgrees(t *testing.T, out *memstore.Bucket, spec transform.Spec) schema.Schema {
	t.Helper()
	ctx := context.Background()
	sc, err := schema.NewStore(out).Load(ctx)
	if err != nil || sc.Version == 0 {
		t.Fatalf("schema version %d, err %v", sc.Version, err)
	}
	types := sc.Types()
	for key, data := range out.Objects() {
		if !strings.HasPrefix(key, "year=") || !strings.HasSuffix(key, ".parquet") {
			continue
		}
		cols, _, err := reduce.FileColumns(ctx, transform.DefaultSpec(), out, key, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			if types[c.Name] != c.Type {
				t.Errorf("%s: column %s is %s in the file, %s in the table (version %d)", key, c.Name, c.Type, types[c.Name], sc.Version)
			}
		}
	}
	store := catalog.New(memstore.New())
	target := crawl.Target{Database: "segmentlogs", TableName: "mobile", Location: "s3://lake/mobile/"}
	if _, err := crawl.Crawl(ctx, out, target, store, crawl.Options{}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	tbl, err := store.GetTable(ctx, "segmentlogs", "mobile")
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, c := range tbl.Columns {
		got = append(got, c.Name+" "+c.Type.String())
	}
	kind := map[column.Type]string{column.TypeString: "string", column.TypeBool: "boolean", column.TypeBigint: "bigint",
		column.TypeDouble: "double", column.TypeLocalTime: "timestamp", column.TypeUTCTime: "timestamp"}
	for _, c := range sc.Columns {
		want = append(want, c.Name+" "+kind[c.Type])
	}
	if spec.Format != "csv" { // Parquet readers match by name: compare as sets
		slices.Sort(got)
		slices.Sort(want)
	}
	if !slices.Equal(got, want) {
		t.Errorf("catalog columns\n%v\nwant the table schema's\n%v", got, want)
	}
	return sc
}

// A column keeps one type in every Parquet file of the table: a widening
// rewrites the published partitions outside the run, in the same run, and
// a new nested field is appended.
func TestSchemaWidensEveryPartition(t *testing.T) {
	t.Parallel()
	spec := testSpec()
	want := []struct {
		score     column.Type
		converted []string
		values    map[string]string // partition -> properties_score as read back
	}{
		{column.TypeBigint, nil, map[string]string{"2026-10-01": "3"}},
		{column.TypeDouble, []string{"2026-10-01"}, map[string]string{"2026-10-01": "3", "2026-10-02": "3.5"}},
		{column.TypeString, []string{"2026-10-01", "2026-10-02"}, map[string]string{"2026-10-01": "3", "2026-10-02": "3.5", "2026-10-03": "high"}},
	}
	runSeries(t, spec, scoreRuns(), func(i int, s *job.Step, sum *job.Summary) {
		out := s.Out.(*memstore.Bucket)
		sc := tableAgrees(t, out, spec)
		col, _ := sc.Column("properties_score")
		if col.Type != want[i].score || sc.Version != i+1 || sc.Converted != sc.Version {
			t.Errorf("run %d: score %s, version %d, converted %d", i, col.Type, sc.Version, sc.Converted)
		}
		var converted []string
		for d := range sum.Schema.Converted {
			converted = append(converted, d)
		}
		slices.Sort(converted)
		if !slices.Equal(converted, want[i].converted) {
			t.Errorf("run %d: converted %v, want %v", i, converted, want[i].converted)
		}
		for d, v := range want[i].values {
			tb := readPartition(t, out, d)
			if got := tb.rows[0]["properties_score"].String(); got != v {
				t.Errorf("run %d: %s score %q, want %q", i, d, got, v)
			}
			if _, has := tb.types["properties_address_city"]; has != (d == "2026-10-03") {
				t.Errorf("run %d: %s has properties_address_city: %v", i, d, has)
			}
		}
		if i == 2 && !slices.Equal(sum.Schema.Added, []string{"properties_address_city"}) {
			t.Errorf("added %v", sum.Schema.Added)
		}
	})
}

// CSV files are read by position: every file writes the table's columns in
// the table's order, new columns at the end, so an older file's columns
// are a prefix of the table's and its values parse as the wider type.
func TestSchemaCSVColumnsByPosition(t *testing.T) {
	t.Parallel()
	spec := testSpec()
	spec.Format, spec.Compression = "csv", "none"
	runSeries(t, spec, scoreRuns(), func(i int, s *job.Step, sum *job.Summary) {
		out := s.Out.(*memstore.Bucket)
		sc := tableAgrees(t, out, spec)
		var order []string
		for _, c := range sc.Columns {
			order = append(order, c.Name)
		}
		if i == 2 && order[len(order)-1] != "properties_address_city" {
			t.Errorf("new column not last: %v", order)
		}
		for key, data := range out.Objects() {
			if !strings.HasPrefix(key, "year=") {
				continue
			}
			recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if h := recs[0]; !slices.Equal(h, order[:len(h)]) {
				t.Errorf("run %d: %s header %v is not a prefix of the table's columns %v", i, key, h, order)
			}
			row := recs[1]
			score := row[slices.Index(order, "properties_score")]
			if !strings.Contains("3 3.5 high", score) || score == "" {
				t.Errorf("run %d: %s score %q", i, key, score)
			}
		}
	})
}

// A pinned type is kept whatever the data says: a value it cannot hold is
// quarantined with its reason; pinning a column narrower than the table
// has it is refused, naming the field.
func TestPinnedColumnType(t *testing.T) {
	t.Parallel()
	in, out := memstore.New(), memstore.New()
	put(t, in, dayFolder("ios", "2026-10-01")+"part.gz", gz(
		ev("a", "2026-10-01T18:00:00Z", `"properties":{"score":3}`),
		ev("b", "2026-10-01T19:00:00Z", `"properties":{"score":3.5}`),
		ev("c", "2026-10-01T20:00:00Z", `"properties":{"score":9007199254740993}`), // 2^53+1: no exact double
	))
	spec := testSpec()
	spec.Columns = map[string]column.Type{"properties.score": column.TypeBigint}
	s := newStep(in, memstore.New(), out, spec, window(t, "2026-10-01", "2026-10-01"))
	sum := runJob(t, s).summary
	if sum.Quarantined[mapper.ReasonTypeMismatch] != 1 || sum.RowsWritten != 2 {
		t.Errorf("bigint pin: quarantined %v, rows %d", sum.Quarantined, sum.RowsWritten)
	}
	recs := readQuarantine(t, out)
	if len(recs) != 1 || !strings.Contains(recs[0].Detail, "properties.score") || !strings.Contains(recs[0].Detail, "bigint") {
		t.Errorf("quarantine %+v", recs)
	}
	tableAgrees(t, out, spec)

	// Pinned double: 2^53+1 has no exact double and is quarantined; the
	// table's bigint widens to double.
	spec.Columns["properties.score"] = column.TypeDouble
	s = newStep(in, memstore.New(), out, spec, window(t, "2026-10-01", "2026-10-01"))
	s.RunID, s.SpecID = "run-double", "spec-double" // a new spec rebuilds
	sum = runJob(t, s).summary
	if sum.Quarantined[mapper.ReasonTypeMismatch] != 1 || sum.RowsWritten != 2 {
		t.Errorf("double pin: quarantined %v, rows %d", sum.Quarantined, sum.RowsWritten)
	}
	if sc := tableAgrees(t, out, spec); sc.Types()["properties_score"] != column.TypeDouble {
		t.Errorf("score %s", sc.Types()["properties_score"])
	}

	// Back to bigint: the files hold doubles, refused before any file
	// changes.
	spec.Columns["properties.score"] = column.TypeBigint
	s = newStep(in, memstore.New(), out, spec, window(t, "2026-10-01", "2026-10-01"))
	s.RunID, s.SpecID = "run-narrow", "spec-narrow"
	_, err := tryJob(s)
	if err == nil || !fault.IsPermanent(err) || !strings.Contains(err.Error(), "columns.properties.score") {
		t.Fatalf("narrowing pin: %v", err)
	}
}

// A widening that meets a partition owned by another running run leaves it
// to a later run, which converts it.
func TestSchemaConversionDeferredToLaterRun(t *testing.T) {
	t.Parallel()
	spec := testSpec()
	in, out := widenedInput(t, spec)
	s := newStep(in, memstore.New(), out, spec, window(t, "2026-10-02", "2026-10-02"))
	s.RunID = "run-2"
	s.ClaimTable = func(context.Context) ([]civil.Window, error) {
		return []civil.Window{window(t, "2026-09-30", "2026-10-01")}, nil
	}
	sum := runJob(t, s).summary
	if !slices.Equal(sum.Schema.Deferred, []string{"2026-10-01"}) || len(sum.Schema.Converted) != 0 {
		t.Fatalf("deferred %v converted %v", sum.Schema.Deferred, sum.Schema.Converted)
	}
	sc, _ := schema.NewStore(out).Load(context.Background())
	if sc.Converted >= sc.Version {
		t.Fatalf("converted %d of version %d with a partition deferred", sc.Converted, sc.Version)
	}
	// A later run with nothing to rebuild still converts what was left,
	// claiming the table first.
	claims := 0
	s = newStep(in, memstore.New(), out, spec, window(t, "2026-10-02", "2026-10-02"))
	s.RunID = "run-3"
	s.ClaimTable = func(context.Context) ([]civil.Window, error) { claims++; return nil, nil }
	sum = runJob(t, s).summary
	if sum.Schema == nil || sum.Schema.Converted["2026-10-01"] != 1 || claims != 1 {
		t.Fatalf("later run: %+v, %d claims", sum.Schema, claims)
	}
	tableAgrees(t, out, spec)
	// With nothing left to convert, a run claims nothing: other runs may
	// start beside it.
	s = newStep(in, memstore.New(), out, spec, window(t, "2026-10-02", "2026-10-02"))
	s.RunID, s.Force = "run-4", true
	s.ClaimTable = func(context.Context) ([]civil.Window, error) {
		t.Error("claimed with nothing to convert")
		return nil, nil
	}
	runJob(t, s)
}

// Two copies of one message id whose timestamps fall on different dates
// (Segment's clock-skew correction can move a redelivery across midnight)
// are published once, also when a later run rebuilds only one of the
// dates: the rebuilt date leaves out a key its neighbour already holds.
// Without the horizon (0) the second run publishes the key twice, which is
// the hole this closes.
func TestCrossDateDuplicateRebuildingOneDate(t *testing.T) {
	t.Parallel()
	for _, horizon := range []int{1, 0} {
		in, out := memstore.New(), memstore.New()
		put(t, in, dayFolder("ios", "2026-10-02")+"a.gz", gz(
			ev("k", "2026-10-02T06:59:59Z"), // 2026-10-01 23:59:59 in Pacific time
			ev("a1", "2026-10-02T01:00:00Z"),
		))
		put(t, in, dayFolder("ios", "2026-10-03")+"b.gz", gz(
			ev("k", "2026-10-02T07:00:01Z"), // the redelivery: 2026-10-02 00:00:01
			ev("b1", "2026-10-02T18:00:00Z"),
		))
		spec := testSpec()
		spec.DedupeHorizonDays = horizon
		runJob(t, newStep(in, memstore.New(), out, spec, window(t, "2026-10-01", "2026-10-02")))
		where := func() []string {
			var dates []string
			for _, d := range []string{"2026-10-01", "2026-10-02"} {
				if _, ok := readPartition(t, out, d).byID(t)["k"]; ok {
					dates = append(dates, d)
				}
			}
			return dates
		}
		if got := where(); !slices.Equal(got, []string{"2026-10-01"}) {
			t.Fatalf("horizon %d, first run: k in %v, want 2026-10-01 (the smaller object key)", horizon, got)
		}
		// New input for 2026-10-02 only: that date alone is rebuilt, from
		// b.gz and c.gz; a.gz, which feeds only 2026-10-01, is not read.
		put(t, in, dayFolder("ios", "2026-10-03")+"c.gz", gz(ev("c1", "2026-10-02T19:00:00Z")))
		s := newStep(in, memstore.New(), out, spec, window(t, "2026-10-02", "2026-10-02"))
		s.RunID = "run-2"
		sum := runJob(t, s).summary
		got := where()
		if horizon == 0 {
			if !slices.Equal(got, []string{"2026-10-01", "2026-10-02"}) {
				t.Errorf("horizon 0: k in %v; the test no longer shows the hole", got)
			}
			continue
		}
		if !slices.Equal(got, []string{"2026-10-01"}) || sum.Partitions["2026-10-02"] != 2 || sum.Duplicates != 1 || !sum.Balanced {
			t.Errorf("second run: k in %v, partitions %v, duplicates %d (%s)", got, sum.Partitions, sum.Duplicates, sum.Reconciliation)
		}
		// Rebuilding the other date alone keeps k where it is.
		s = newStep(in, memstore.New(), out, spec, window(t, "2026-10-01", "2026-10-01"))
		s.RunID, s.Force = "run-3", true
		runJob(t, s)
		if got := where(); !slices.Equal(got, []string{"2026-10-01"}) {
			t.Errorf("third run: k in %v", got)
		}
	}
}

// A reduce or encode delivered again after its date's commit (its worker
// died after the barrier, before asynq's acknowledgement) does nothing: the
// commit took its fragments, and a conversion's source file is gone.
func TestReduceAndEncodeAgainAfterCommit(t *testing.T) {
	t.Parallel()
	spec := testSpec()
	ctx := context.Background()
	in, out := widenedInput(t, spec)
	s := newStep(in, memstore.New(), out, spec, window(t, "2026-10-02", "2026-10-02"))
	var again []error
	_, err := jobtest.RunEach(ctx, s, func(next job.Next) {
		if c := next.Committed; c != nil {
			n, err := s.Reduce(ctx, c.Date, 0)
			if err == nil && (len(n.Encodes) > 0 || n.Reduced != nil) {
				err = fmt.Errorf("reduce made work ready again: %+v", n)
			}
			if err == nil {
				n, err = s.Encode(ctx, c.Date, 0, 1)
				if err == nil && (len(n.Commits) > 0 || n.Encoded != nil) {
					err = fmt.Errorf("encode made work ready again: %+v", n)
				}
			}
			again = append(again, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 {
		t.Fatalf("%d commits, want 2 (the rebuilt date and the converted one)", len(again))
	}
	for _, err := range again {
		if err != nil {
			t.Errorf("reduce after the commit: %v", err)
		}
	}
	for _, d := range []string{"2026-10-01", "2026-10-02"} {
		if files := partitionFiles(t, out, d); len(files) != 1 {
			t.Errorf("%s: files %v", d, files)
		}
	}
	tableAgrees(t, out, spec)
}

// vanishing answers "does not exist" for the published Parquet files of one
// date, as if another run replaced them between the listing and the read.
type vanishing struct {
	*memstore.Bucket
	date string
}

func (v vanishing) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if strings.HasPrefix(key, "year=") && strings.Contains(key, "/date="+v.date+"/") && strings.HasSuffix(key, ".parquet") {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	return v.Bucket.GetRange(ctx, key, off, n)
}

// A published file that vanishes while a conversion is planned belongs to
// a run that is rebuilding its partition (deferred, as that run's), or to
// one that has ended since: then the plan is stale and the split task
// fails, for its retry to list again, rather than guess.
func TestConversionPlanOfAVanishedFile(t *testing.T) {
	t.Parallel()
	spec := testSpec()
	in, out := widenedInput(t, spec)

	s := newStep(in, memstore.New(), vanishing{out, "2026-10-01"}, spec, window(t, "2026-10-02", "2026-10-02"))
	s.ClaimTable = func(context.Context) ([]civil.Window, error) { return nil, nil }
	if _, err := tryJob(s); err == nil || !strings.Contains(err.Error(), "partition 2026-10-01 changed while it was planned") {
		t.Fatalf("no run owns the vanished partition: %v", err)
	}
	s = newStep(in, memstore.New(), vanishing{out, "2026-10-01"}, spec, window(t, "2026-10-02", "2026-10-02"))
	s.ClaimTable = func(context.Context) ([]civil.Window, error) {
		return []civil.Window{window(t, "2026-10-01", "2026-10-01")}, nil
	}
	sum := runJob(t, s).summary
	if sum.Schema == nil || !slices.Equal(sum.Schema.Deferred, []string{"2026-10-01"}) {
		t.Fatalf("a running run owns it: %+v", sum.Schema)
	}
}

// widenedInput publishes 2026-10-01 with an integer properties.score and
// adds input for 2026-10-02 whose score is a double: a run of 10-02 widens
// the column and has 10-01's file to convert.
func widenedInput(t *testing.T, spec transform.Spec) (in, out *memstore.Bucket) {
	t.Helper()
	in, out = memstore.New(), memstore.New()
	put(t, in, dayFolder("ios", "2026-10-01")+"a.gz", gz(ev("a", "2026-10-01T18:00:00Z", `"properties":{"score":3}`)))
	runJob(t, newStep(in, memstore.New(), out, spec, window(t, "2026-10-01", "2026-10-01")))
	put(t, in, dayFolder("ios", "2026-10-02")+"b.gz", gz(ev("b", "2026-10-02T18:00:00Z", `"properties":{"score":3.5}`)))
	return in, out
}
