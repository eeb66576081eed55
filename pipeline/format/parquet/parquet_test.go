package parquet_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"sluice/pipeline/format/parquet"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
)

var testColumns = []parquet.Column{
	{Name: "anonymous_id", Type: parquet.String}, // unique: plain
	{Name: "context_os", Type: parquet.String},   // repetitive: dictionary
	{Name: "count", Type: parquet.Int64},         // repetitive: dictionary
	{Name: "flag", Type: parquet.Bool},           //
	{Name: "price", Type: parquet.Double},        // -0
	{Name: "properties", Type: parquet.String},   // long values
	{Name: "seq", Type: parquet.Int64},           // unique: delta
	{Name: "timestamp", Type: parquet.TimestampLocal},
	{Name: "timestamp_utc", Type: parquet.TimestampUTC},
	{Name: "zzz_empty", Type: parquet.String}, // always null
}

// cell is one generated value: nil for null.
type cell any

// genRows makes n rows of testColumns; seed varies them.
func genRows(seed uint64, n int) [][]cell {
	rng := rand.New(rand.NewPCG(seed, 7))
	oses := []string{"iOS", "Android", "iPadOS"}
	rows := make([][]cell, n)
	ts := int64(1_700_000_000_000_000)
	for i := range rows {
		ts += int64(rng.IntN(3_000_000))
		r := make([]cell, len(testColumns))
		if rng.IntN(10) > 0 {
			r[0] = fmt.Sprintf("anon-%d-%d", seed, rng.Uint64())
		}
		if rng.IntN(5) > 0 {
			r[1] = oses[rng.IntN(len(oses))]
		}
		if rng.IntN(3) > 0 {
			r[2] = int64(rng.IntN(20) - 5)
		}
		if rng.IntN(4) > 0 {
			r[3] = rng.IntN(2) == 0
		}
		switch k := rng.IntN(40); {
		case k == 1:
			r[4] = math.Copysign(0, -1)
		case k < 30:
			r[4] = rng.Float64()*200 - 50
		}
		if rng.IntN(2) == 0 {
			r[5] = strings.Repeat(fmt.Sprintf("{\"sku\":\"%d\"}", rng.IntN(100)), 1+rng.IntN(5))
		}
		if i == n/2 {
			r[5] = strings.Repeat("\xff", 5000) // a bound too long for the footer
		}
		r[6] = int64(i) * 7
		r[7] = ts - 8*3600_000_000
		r[8] = ts
		rows[i] = r
	}
	return rows
}

// valuesOf fills one Values per column of cols (indexes into
// testColumns) with rows.
func valuesOf(rows [][]cell, cols []int) []*parquet.Values {
	out := make([]*parquet.Values, len(cols))
	for j, c := range cols {
		v := parquet.NewValues(testColumns[c].Type)
		for _, r := range rows {
			switch x := r[c].(type) {
			case nil:
				v.AppendNull()
			case string:
				v.AppendString([]byte(x))
			case int64:
				v.AppendInt(x)
			case bool:
				v.AppendBool(x)
			case float64:
				v.AppendDouble(x)
			}
		}
		out[j] = v
	}
	return out
}

func allColumns() []int {
	var out []int
	for i := range testColumns {
		out = append(out, i)
	}
	return out
}

func columnsOf(idx []int) []parquet.Column {
	var out []parquet.Column
	for _, i := range idx {
		out = append(out, testColumns[i])
	}
	return out
}

// writeFile writes row groups of rows with columns idx.
func writeFile(t *testing.T, groups [][][]cell, idx []int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, columnsOf(idx), parquet.Options{KeyValue: map[string]string{"sluice.time_zone": "America/Los_Angeles"}})
	for _, g := range groups {
		if err := w.WriteRowGroup(valuesOf(g, idx)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The file reads back, through parquet-go, as the rows written: every
// value, null, NaN and -0 in its place, row groups and schema as written.
func TestWriterRoundTrip(t *testing.T) {
	groups := [][][]cell{genRows(1, 30000), genRows(2, 12345), genRows(3, 1)}
	data := writeFile(t, groups, allColumns())
	f, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.RowGroups()); got != 3 {
		t.Fatalf("%d row groups, want 3", got)
	}
	if tz, _ := f.Lookup("sluice.time_zone"); tz != "America/Los_Angeles" {
		t.Errorf("key-value metadata: time zone %q", tz)
	}
	for i, c := range f.Schema().Columns() {
		if c[0] != testColumns[i].Name {
			t.Fatalf("column %d is %v, want %s", i, c, testColumns[i].Name)
		}
	}
	want := slices.Concat(groups...)
	r := pq.NewReader(f)
	row := pq.Row{}
	for i := range want {
		rows := []pq.Row{row}
		if n, err := r.ReadRows(rows); n != 1 {
			t.Fatalf("row %d: %v", i, err)
		}
		row = rows[0]
		checkRow(t, i, row, want[i])
	}
}

func checkRow(t *testing.T, i int, got pq.Row, want []cell) {
	t.Helper()
	for c, v := range got {
		w := want[c]
		switch {
		case w == nil:
			if !v.IsNull() {
				t.Fatalf("row %d column %s: %v, want null", i, testColumns[c].Name, v)
			}
		case v.IsNull():
			t.Fatalf("row %d column %s: null, want %v", i, testColumns[c].Name, w)
		default:
			var same bool
			switch x := w.(type) {
			case string:
				same = string(v.ByteArray()) == x
			case int64:
				same = v.Int64() == x
			case bool:
				same = v.Boolean() == x
			case float64:
				same = math.Float64bits(v.Double()) == math.Float64bits(x)
			}
			if !same {
				t.Fatalf("row %d column %s: %.60v, want %.60v", i, testColumns[c].Name, v, w)
			}
		}
	}
}

// The page index and statistics hold: every page's bounds and null count
// are those of its values (strings truncated to 16 bytes, the max rounded
// up), the chunk statistics are the chunk's bounds (dropped when longer
// than 4 KiB), and seeking to a row through the offset index lands on it.
func TestWriterPageIndexAndStatistics(t *testing.T) {
	rows := genRows(4, 50000)
	data := writeFile(t, [][][]cell{rows}, allColumns())
	f, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rg := f.RowGroups()[0]
	for c, cc := range rg.ColumnChunks() {
		col := testColumns[c]
		oi, err := cc.OffsetIndex()
		if err != nil {
			t.Fatalf("%s: offset index: %v", col.Name, err)
		}
		ci, err := cc.ColumnIndex()
		if err != nil {
			t.Fatalf("%s: column index: %v", col.Name, err)
		}
		if oi.NumPages() < 1 || ci.NumPages() != oi.NumPages() {
			t.Fatalf("%s: %d pages in the offset index, %d in the column index", col.Name, oi.NumPages(), ci.NumPages())
		}
		var lo, hi []byte
		for p := range oi.NumPages() {
			first := oi.FirstRowIndex(p)
			last := int64(len(rows))
			if p+1 < oi.NumPages() {
				last = oi.FirstRowIndex(p + 1)
			}
			var nulls int64
			var pmin, pmax []byte
			for _, r := range rows[first:last] {
				b := plainOf(r[c])
				if b == nil {
					nulls++
					continue
				}
				if pmin == nil || less(col.Type, b, pmin) {
					pmin = b
				}
				if pmax == nil || less(col.Type, pmax, b) {
					pmax = b
				}
			}
			if ci.NullCount(p) != nulls || ci.NullPage(p) != (pmin == nil) {
				t.Fatalf("%s page %d: %d nulls (null page %v), want %d", col.Name, p, ci.NullCount(p), ci.NullPage(p), nulls)
			}
			if pmin == nil {
				continue
			}
			gmin, gmax := ci.MinValue(p).Bytes(), ci.MaxValue(p).Bytes()
			if col.Type == parquet.String {
				// A max of 0xFF bytes cannot be rounded up, and stays whole.
				if !bytes.HasPrefix(pmin, gmin) || len(gmin) > 16 || bytes.Compare(gmax, pmax) < 0 || len(gmax) > 16 && !bytes.Equal(gmax, pmax) {
					t.Fatalf("%s page %d: bounds %.40q..%.40q for values %.40q..%.40q", col.Name, p, gmin, gmax, pmin, pmax)
				}
			} else if !sameValue(col.Type, gmin, pmin) || !sameValue(col.Type, gmax, pmax) {
				t.Fatalf("%s page %d: bounds %.40x..%.40x, want %.40x..%.40x", col.Name, p, gmin, gmax, pmin, pmax)
			}
			if lo == nil || less(col.Type, pmin, lo) {
				lo = pmin
			}
			if hi == nil || less(col.Type, hi, pmax) {
				hi = pmax
			}
		}
		st := f.Metadata().RowGroups[0].Columns[c].MetaData.Statistics
		switch {
		case lo == nil || len(hi) > 4096:
			if st.MinValue != nil || st.MaxValue != nil {
				t.Errorf("%s: statistics %.40q..%.40q, want none", col.Name, st.MinValue, st.MaxValue)
			}
		case !sameValue(col.Type, st.MinValue, lo) || !sameValue(col.Type, st.MaxValue, hi):
			t.Errorf("%s: statistics %.40x..%.40x, want %.40x..%.40x", col.Name, st.MinValue, st.MaxValue, lo, hi)
		}
	}
	// Seeks go through the offset index.
	r := pq.NewReader(f)
	for _, at := range []int64{0, 1, 19999, 20000, 33333, 49999} {
		if err := r.SeekToRow(at); err != nil {
			t.Fatal(err)
		}
		rs := []pq.Row{{}}
		if n, err := r.ReadRows(rs); n != 1 {
			t.Fatalf("row %d: %v", at, err)
		}
		checkRow(t, int(at), rs[0], rows[at])
	}
}

// Repeated values are dictionary-encoded, unique ones are not.
func TestWriterEncodings(t *testing.T) {
	data := writeFile(t, [][][]cell{genRows(5, 40000)}, allColumns())
	f, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range map[int]format.Encoding{
		0: format.DeltaLengthByteArray, 1: format.RLEDictionary, 2: format.RLEDictionary,
		5: format.RLEDictionary, 6: format.DeltaBinaryPacked, 8: format.DeltaBinaryPacked,
	} {
		enc := f.Metadata().RowGroups[0].Columns[c].MetaData.Encoding
		if !slices.Contains(enc, want) {
			t.Errorf("%s: encodings %v, want %v", testColumns[c].Name, enc, want)
		}
	}
}

// A file assembled from fragments (each a range of columns of one row
// group, written by its own Writer) is the file one Writer writes, byte
// for byte, on every backend's Compose.
func TestAssembleEqualsSingleWriter(t *testing.T) {
	ctx := context.Background()
	groups := [][][]cell{genRows(6, 9000), genRows(7, 4000), genRows(8, 20000)}
	want := writeFile(t, groups, allColumns())
	b := memstore.New()
	colGroups := [][]int{{0, 1, 2}, {3}, {4, 5, 6, 7, 8, 9}}
	var blocks [][]*parquet.Fragment
	for g, rows := range groups {
		var block []*parquet.Fragment
		for k, cols := range colGroups {
			key := fmt.Sprintf("frag/%d-%d.parquet", g, k)
			data := writeFile(t, [][][]cell{rows}, cols)
			if err := b.Put(ctx, key, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			f, err := parquet.ReadFragment(ctx, b, key, int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			block = append(block, f)
		}
		blocks = append(blocks, block)
	}
	// The last two row groups also as one fragment of every column.
	whole := writeFile(t, groups[1:], allColumns())
	if err := b.Put(ctx, "frag/whole.parquet", bytes.NewReader(whole)); err != nil {
		t.Fatal(err)
	}
	wf, err := parquet.ReadFragment(ctx, b, "frag/whole.parquet", int64(len(whole)))
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string]string{"sluice.time_zone": "America/Los_Angeles"}
	for name, bl := range map[string][][]*parquet.Fragment{"fragments": blocks, "fragments and a whole file": {blocks[0], {wf}}} {
		sections, err := parquet.Assemble(bl, kv)
		if err != nil {
			t.Fatal(err)
		}
		if err := storage.Compose(ctx, b, "out.parquet", sections); err != nil {
			t.Fatal(err)
		}
		got := b.Objects()["out.parquet"]
		if !bytes.Equal(got, want) {
			t.Errorf("%s: assembled %d bytes, differ from the %d bytes of one writer", name, len(got), len(want))
		}
	}
}

// Fragments that do not fit together are refused.
func TestAssembleRefusesMismatch(t *testing.T) {
	ctx := context.Background()
	b := memstore.New()
	frag := func(key string, rows [][]cell, cols []int) *parquet.Fragment {
		data := writeFile(t, [][][]cell{rows}, cols)
		if err := b.Put(ctx, key, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		f, err := parquet.ReadFragment(ctx, b, key, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := frag("a", genRows(1, 100), []int{0, 1})
	short := frag("short", genRows(1, 99), []int{2})
	other := frag("other", genRows(1, 100), []int{2})
	swapped := frag("swapped", genRows(1, 100), []int{1, 0})
	if _, err := parquet.Assemble([][]*parquet.Fragment{{a, short}}, nil); err == nil {
		t.Error("fragments of different row counts assembled")
	}
	if _, err := parquet.Assemble([][]*parquet.Fragment{{a, other}, {swapped, other}}, nil); err == nil {
		t.Error("blocks of different columns assembled")
	}
	if err := b.Put(ctx, "junk", strings.NewReader("not a parquet file at all")); err != nil {
		t.Fatal(err)
	}
	if _, err := parquet.ReadFragment(ctx, b, "junk", 25); err == nil {
		t.Error("junk read as a fragment")
	}
}

func plainOf(c cell) []byte {
	switch x := c.(type) {
	case string:
		return []byte(x)
	case int64:
		return binary.LittleEndian.AppendUint64(nil, uint64(x))
	case bool:
		if x {
			return []byte{1}
		}
		return []byte{0}
	case float64:
		if math.IsNaN(x) {
			return nil
		}
		return binary.LittleEndian.AppendUint64(nil, math.Float64bits(x))
	}
	return nil
}

func less(t parquet.Type, a, b []byte) bool {
	switch t {
	case parquet.String:
		return bytes.Compare(a, b) < 0
	case parquet.Double:
		return math.Float64frombits(binary.LittleEndian.Uint64(a)) < math.Float64frombits(binary.LittleEndian.Uint64(b))
	case parquet.Bool:
		return a[0] < b[0]
	}
	return int64(binary.LittleEndian.Uint64(a)) < int64(binary.LittleEndian.Uint64(b))
}

// sameValue compares PLAIN values; -0 and +0 are the same double.
func sameValue(t parquet.Type, a, b []byte) bool {
	if t == parquet.Double && len(a) == 8 && len(b) == 8 {
		return math.Float64frombits(binary.LittleEndian.Uint64(a)) == math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return bytes.Equal(a, b)
}
