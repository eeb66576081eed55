package reduce_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"

	"sluice/pipeline/civil"
	"sluice/pipeline/format"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
	tt "sluice/pipeline/transform/transformtest"
)

// mapped maps objects (each a list of lines, in key order) as one shard
// and returns the scratch bucket and the input of the one slice that
// holds every virtual bucket of date d, as the job's split would make it.
func mapped(t *testing.T, spec transform.Spec, d civil.Date, objects ...[]string) (*memstore.Bucket, reduce.SliceInput) {
	t.Helper()
	ctx := context.Background()
	in, scratch := memstore.New(), memstore.New()
	var shard transform.Shard
	for i, lines := range objects {
		key := tt.DayFolder("ios", d.String()) + "part-" + string(rune('a'+i)) + ".gz"
		body := tt.Gzip(lines...)
		tt.Put(t, in, key, body)
		shard.Objects = append(shard.Objects, transform.Object{Source: "ios", Key: key, Size: int64(len(body))})
	}
	const dir = "shards/00000/"
	man, err := mapper.MapShard(ctx, in, scratch, dir, spec, civil.Window{Start: d, End: d}, shard, mapper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mans := []*mapper.Manifest{man}
	sc, _, coll, err := schema.Merge(schema.Schema{}, spec, mapper.RunTypes(spec, mans))
	if err != nil {
		t.Fatal(err)
	}
	plan := sc.Plan(spec, coll)
	cols := mapper.DateColumns(spec, plan, mans, d)
	si := reduce.SliceInput{Date: d, Lo: 0, Hi: intermediate.VBuckets, Codec: man.Codec, Columns: cols, Groups: []int{0}}
	df := man.Date(d)
	if df == nil {
		t.Fatalf("no rows mapped on %s", d)
	}
	si.Shards = []reduce.ShardRows{{Key: dir + df.RowsFile, ColMap: mapper.ColMap(plan, cols, man), Index: df.RowsIndex.Slice(0, intermediate.VBuckets)}}
	return scratch, si
}

// slice reduces si into one run and returns it, uncompressed.
func slice(t *testing.T, scratch *memstore.Bucket, spec transform.Spec, si reduce.SliceInput, opts reduce.Options) ([]byte, reduce.SliceStats) {
	t.Helper()
	var run bytes.Buffer
	st, err := reduce.Slice(context.Background(), reduce.IO{Scratch: scratch, Runs: []io.Writer{&run}}, spec, si, opts)
	if err != nil {
		t.Fatal(err)
	}
	if si.Codec != intermediate.CodecS2 {
		return run.Bytes(), st
	}
	plain, err := io.ReadAll(s2.NewReader(&run))
	if err != nil {
		t.Fatal(err)
	}
	return plain, st
}

// A slice too large for its memory is reduced a chunk of virtual buckets
// at a time into sorted runs on disk, merged: the same run as in memory.
func TestSliceSpillMatchesInMemory(t *testing.T) {
	t.Parallel()
	spec := transform.DefaultSpec()
	d := tt.Date(t, "2026-11-02")
	var lines []string
	for i := range 300 {
		ts := "2026-11-02T" + []string{"18", "19", "20"}[i%3] + ":00:00Z"
		lines = append(lines, tt.Event("m"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), ts, `"n":`+string(rune('0'+i%10))))
	}
	scratch, si := mapped(t, spec, d, lines, lines[:100]) // the second object repeats keys
	mem, memSt := slice(t, scratch, spec, si, reduce.Options{})
	spilled, spillSt := slice(t, scratch, spec, si, reduce.Options{MemoryBytes: 1, TempDir: t.TempDir()})
	if memSt.Chunks != 1 || spillSt.Chunks < 2 {
		t.Fatalf("chunks %d in memory, %d spilled; want 1 and more", memSt.Chunks, spillSt.Chunks)
	}
	if memSt.Rows != 300 || memSt.Duplicates != 100 || spillSt.Rows != memSt.Rows || spillSt.Duplicates != memSt.Duplicates {
		t.Errorf("rows %d/%d, duplicates %d/%d; want 300 and 100 both ways", memSt.Rows, spillSt.Rows, memSt.Duplicates, spillSt.Duplicates)
	}
	if !bytes.Equal(mem, spilled) {
		t.Errorf("the spilled run (%d bytes) differs from the one in memory (%d bytes)", len(spilled), len(mem))
	}
}

// Of a key's copies the one of the smallest (object key, line) is kept,
// and the encoded fragment (CSV here) holds its values, rows in time order.
func TestSliceKeepsTheFirstCopy(t *testing.T) {
	t.Parallel()
	spec := transform.DefaultSpec()
	spec.Format, spec.Compression = "csv", "none"
	d := tt.Date(t, "2026-11-02")
	scratch, si := mapped(t, spec, d,
		[]string{tt.Event("k1", "2026-11-02T20:00:00Z", `"v":"first"`), tt.Event("k2", "2026-11-02T19:00:00Z", `"v":"early"`)},
		[]string{tt.Event("k1", "2026-11-02T21:00:00Z", `"v":"second"`)})
	run, st := slice(t, scratch, spec, si, reduce.Options{})
	if st.Rows != 2 || st.Duplicates != 1 {
		t.Fatalf("rows %d, duplicates %d; want 2 and 1", st.Rows, st.Duplicates)
	}
	if err := scratch.Put(context.Background(), "run", bytes.NewReader(run)); err != nil {
		t.Fatal(err)
	}
	in := reduce.FragmentInput{Date: d, Codec: intermediate.CodecNone, Runs: []reduce.RunRef{{Key: "run", Size: int64(len(run))}},
		Fragment: format.Fragment{Columns: si.Columns, From: 0, To: len(si.Columns), Rows: st.Rows, Values: st.Values, StringBytes: st.StringBytes, Header: true}}
	var out bytes.Buffer
	fs, err := reduce.EncodeFragment(context.Background(), scratch, spec, in, &out)
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if fs.Rows != 2 || fs.Bytes != int64(out.Len()) {
		t.Errorf("fragment stats %+v for %d bytes", fs, out.Len())
	}
	early, first := strings.Index(text, "early"), strings.Index(text, "first")
	if strings.Contains(text, "second") || early < 0 || first < 0 || early > first {
		t.Errorf("want the first copy of k1, after k2 (earlier), got\n%s", text)
	}
}
