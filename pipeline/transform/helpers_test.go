package transform

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"sluice/pipeline/storage"
)

func testSpec() Spec {
	s := DefaultSpec()
	s.ShardBytes = 1 << 20
	return s
}

func mustDate(t testing.TB, s string) Date {
	t.Helper()
	d, err := ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func window(t testing.TB, start, end string) Window {
	return Window{Start: mustDate(t, start), End: mustDate(t, end)}
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

type jobResult struct {
	maps       []MapStats
	parts      []PartitionStats
	shards     []Shard
	quarantine int64
}

const scratchPrefix = "runs/test"

// runJob runs the whole job the way the workflow will: plan, map every
// shard, reduce every date of the window, publish the quarantine, and check
// the reconciliation.
func runJob(t testing.TB, in storage.Reader, scratch, out storage.Bucket, spec Spec, w Window, opts ReduceOptions) jobResult {
	t.Helper()
	ctx := context.Background()
	shards, err := PlanShards(ctx, in, spec, w)
	if err != nil {
		t.Fatal(err)
	}
	res := jobResult{shards: shards}
	for _, sh := range shards {
		st, err := MapShard(ctx, in, scratch, scratchPrefix, spec, w, sh)
		if err != nil {
			t.Fatal(err)
		}
		res.maps = append(res.maps, st)
	}
	for _, d := range w.Dates() {
		ps, err := ReducePartition(ctx, scratch, scratchPrefix, out, spec, d, len(shards), opts)
		if err != nil {
			t.Fatal(err)
		}
		res.parts = append(res.parts, ps)
	}
	n, _, err := PublishQuarantine(ctx, scratch, scratchPrefix, out, QuarantineDir(w, "test"), len(shards))
	if err != nil {
		t.Fatal(err)
	}
	res.quarantine = n
	if err := Reconcile(res.maps, res.parts); err != nil {
		t.Fatal(err)
	}
	return res
}

// table is a read-back Parquet file.
type table struct {
	cols  []string
	types map[string]string // column -> logical/physical type text
	rows  []map[string]parquet.Value
}

func readParquet(t testing.TB, data []byte) table {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	tb := table{types: map[string]string{}}
	for _, p := range f.Schema().Columns() {
		tb.cols = append(tb.cols, strings.Join(p, "."))
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
				m[tb.cols[v.Column()]] = v.Clone()
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
	return tb
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

func readPartition(t testing.TB, out *memBucket, date string) table {
	t.Helper()
	d := mustDate(t, date)
	data, ok := out.snapshot()[d.PartitionPath()+"part-00000.parquet"]
	if !ok {
		return table{}
	}
	return readParquet(t, data)
}

// localTime renders a TIMESTAMP(MICROS, not adjusted) value as wall clock.
func localTime(v parquet.Value) string {
	return time.UnixMicro(v.Int64()).UTC().Format("2006-01-02 15:04:05")
}
