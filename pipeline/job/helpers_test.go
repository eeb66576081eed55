package job

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

func testSpec() transform.Spec {
	s := transform.DefaultSpec()
	s.ShardBytes = 1 << 20
	return s
}

func mustDate(t testing.TB, s string) civil.Date {
	t.Helper()
	d, err := civil.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func window(t testing.TB, start, end string) civil.Window {
	return civil.Window{Start: mustDate(t, start), End: mustDate(t, end)}
}

// dayFolder is the received-day folder of a source for a UTC date.
func dayFolder(source, utcDay string) string {
	d, _ := time.Parse(time.DateOnly, utcDay)
	return fmt.Sprintf("segment-logs/%s/%d/", source, d.UnixMilli())
}

func gz(lines ...string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		io.WriteString(zw, l+"\n")
	}
	zw.Close()
	return buf.Bytes()
}

func put(t testing.TB, b storage.Bucket, key string, body []byte) {
	t.Helper()
	if err := b.Put(context.Background(), key, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

// ev renders a minimal valid event.
func ev(id, ts string, extra ...string) string {
	s := fmt.Sprintf(`{"messageId":%q,"timestamp":%q,"event":"Opened","userId":"u1","context":{"device":{"model":"iPhone15,2","adTrackingEnabled":true},"os":{"name":"iOS"}},"integrations":{"All":true},"_metadata":{"bundled":["Segment.io"]}`, id, ts)
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

// memBarrier is an in-process Barrier with the Redis barrier's contract
// (pipeline/barrier tests that one against a real Redis).
type memBarrier struct {
	mu       sync.Mutex
	members  map[string]map[string]bool
	complete map[string]bool
}

func newMemBarrier() *memBarrier {
	return &memBarrier{members: map[string]map[string]bool{}, complete: map[string]bool{}}
}

func (b *memBarrier) Arrive(_ context.Context, phase, member string, total int) (Arrival, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.members[phase] == nil {
		b.members[phase] = map[string]bool{}
	}
	b.members[phase][member] = true
	a := Arrival{Arrived: len(b.members[phase])}
	if a.Arrived >= total {
		a.Complete = true
		a.First = !b.complete[phase]
		b.complete[phase] = true
	}
	return a, nil
}

// newStep is a job step of run "run-test" over memory buckets.
func newStep(in storage.Reader, scratch, out storage.Bucket, spec transform.Spec, w civil.Window) *Step {
	return &Step{
		RunID: "run-test", Name: "daily", Spec: spec, SpecID: "spec-1", Window: w,
		In: in, Out: out, Scratch: scratch, Bookmarks: bookmark.NewStore(out, "daily"), Barrier: newMemBarrier(),
	}
}

type jobResult struct {
	shards  int
	maps    []transform.MapStats
	reduced []transform.BucketStats
	commits map[string]*Commit
	summary *Summary
}

// runJob runs every phase of a step the way the workers do, one task at a
// time in the order the phases make them ready, and fails the test unless
// the step ends.
func runJob(t testing.TB, s *Step) jobResult {
	t.Helper()
	res, err := tryJob(s)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func tryJob(s *Step) (jobResult, error) {
	ctx := context.Background()
	res := jobResult{commits: map[string]*Commit{}}
	queue := []func() (Next, error){func() (Next, error) { return s.Plan(ctx) }}
	for len(queue) > 0 {
		next, err := queue[0]()
		queue = queue[1:]
		if err != nil {
			return res, err
		}
		if next.Mapped != nil {
			res.maps = append(res.maps, *next.Mapped)
		}
		if next.Reduced != nil {
			res.reduced = append(res.reduced, *next.Reduced)
		}
		if next.Committed != nil {
			res.commits[next.Committed.Date.String()] = next.Committed
		}
		if next.Done != nil {
			res.summary = next.Done
			return res, nil
		}
		if next.Maps > 0 {
			res.shards = next.Maps
		}
		for i := range next.Maps {
			queue = append(queue, func() (Next, error) { return s.Map(ctx, i, next.Maps) })
		}
		if next.Bucket {
			queue = append(queue, func() (Next, error) { return s.Bucket(ctx, next.Shards) })
		}
		for _, r := range next.Reduces {
			queue = append(queue, func() (Next, error) { return s.Reduce(ctx, r.Date, r.Bucket, r.Buckets) })
		}
		for _, d := range next.Commits {
			queue = append(queue, func() (Next, error) { return s.Commit(ctx, d, next.CommitTotal) })
		}
	}
	return res, fmt.Errorf("the step did not end")
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
