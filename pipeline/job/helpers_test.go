package job_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
	"sluice/pipeline/job/jobtest"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
	"sluice/pipeline/transform/transformtest"
)

func testSpec() transform.Spec {
	s := transform.DefaultSpec()
	s.ShardBytes = 1 << 20
	return s
}

// newStep is a job step of run "run-test" over memory buckets.
func newStep(in storage.Reader, scratch, out storage.Bucket, spec transform.Spec, w civil.Window) *job.Step {
	return &job.Step{
		RunID: "run-test", Name: "daily", Spec: spec, SpecID: "spec-1", Window: w,
		In: in, Out: out, Scratch: scratch, Bookmarks: bookmark.NewStore(out, "daily"), Barrier: jobtest.NewBarrier(),
	}
}

type jobResult struct {
	shards  int
	maps    []mapper.Stats
	reduced []reduce.SliceStats
	encoded []reduce.FragmentStats
	commits map[string]*job.Commit
	summary *job.Summary
}

// runJob runs every phase of a step the way the workers do, one task at a
// time in the order the phases make them ready, and fails the test unless
// the step ends.
func runJob(t testing.TB, s *job.Step) jobResult {
	t.Helper()
	res, err := tryJob(s)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func tryJob(s *job.Step) (jobResult, error) {
	res := jobResult{commits: map[string]*job.Commit{}}
	sum, err := jobtest.RunEach(context.Background(), s, func(next job.Next) {
		if next.Mapped != nil {
			res.maps = append(res.maps, *next.Mapped)
		}
		if next.Reduced != nil {
			res.reduced = append(res.reduced, *next.Reduced)
		}
		if next.Encoded != nil {
			res.encoded = append(res.encoded, *next.Encoded)
		}
		if next.Committed != nil {
			res.commits[next.Committed.Date.String()] = next.Committed
		}
		if next.Maps > 0 {
			res.shards = next.Maps
		}
	})
	res.summary = sum
	return res, err
}

// table is a read-back Parquet partition.
type table struct {
	files int
	cols  []string
	types map[string]string // column -> logical/physical type text
	rows  []map[string]parquet.Value
}

func readParquet(t testing.TB, data []byte, tb *table) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, p := range f.Schema().Columns() {
		cols = append(cols, strings.Join(p, "."))
	}
	if tb.cols != nil && !slices.Equal(tb.cols, cols) {
		t.Errorf("files of one partition have different columns: %v and %v", tb.cols, cols)
	}
	tb.cols = cols
	if tb.types == nil {
		tb.types = map[string]string{}
	}
	for _, fld := range f.Schema().Fields() {
		tb.types[fld.Name()] = fld.Type().String()
		if lt := fld.Type().LogicalType(); lt != nil {
			if ts, ok := lt.Value.(*format.TimestampType); ok {
				tb.types[fld.Name()] = fmt.Sprintf("TIMESTAMP(utc=%v)", ts.IsAdjustedToUTC)
			}
		}
	}
	r := parquet.NewReader(f)
	defer r.Close()
	rows := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(rows)
		for _, row := range rows[:n] {
			m := map[string]parquet.Value{}
			for _, v := range row {
				m[cols[v.Column()]] = v.Clone()
			}
			tb.rows = append(tb.rows, m)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (tb table) byID(t testing.TB) map[string]map[string]parquet.Value {
	t.Helper()
	out := map[string]map[string]parquet.Value{}
	for _, r := range tb.rows {
		id := r["message_id"].String()
		if _, dup := out[id]; dup {
			t.Errorf("message_id %s twice", id)
		}
		out[id] = r
	}
	return out
}

// readPartition reads every file of a date's partition.
func readPartition(t testing.TB, out *memstore.Bucket, date string) table {
	t.Helper()
	var tb table
	for _, k := range partitionFiles(t, out, date) {
		readParquet(t, out.Objects()[k], &tb)
		tb.files++
	}
	return tb
}

func partitionFiles(t testing.TB, out storage.Reader, date string) []string {
	t.Helper()
	keys, err := storage.ListKeys(context.Background(), out, transform.PartitionPath(mustDate(t, date)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// localTime renders a TIMESTAMP(MICROS, not adjusted) value as wall clock.
func localTime(v parquet.Value) string {
	return time.UnixMicro(v.Int64()).UTC().Format("2006-01-02 15:04:05")
}

var (
	ev        = transformtest.Event
	gz        = transformtest.Gzip
	dayFolder = transformtest.DayFolder
	put       = transformtest.Put
	mustDate  = transformtest.Date
	window    = transformtest.Window
)
