package intermediate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"sluice/pipeline/storage/memstore"
)

// TestWriterGroupsByBucket writes random records of three dates through
// budgets small enough to spill many runs and large enough for none, with
// both codecs, and reads every virtual bucket and some multi-bucket ranges
// back: each holds exactly the records of its buckets, and the ids files
// the matching prefixes.
func TestWriterGroupsByBucket(t *testing.T) {
	for _, codec := range []string{CodecNone, CodecS2} {
		for _, budget := range []int64{1 << 20, 64 << 20} {
			t.Run(fmt.Sprintf("%s/%d", codec, budget), func(t *testing.T) {
				t.Parallel()
				testWriter(t, codec, budget)
			})
		}
	}
}

func testWriter(t *testing.T, codec string, budget int64) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, uint64(budget)))
	w := NewWriter(t.TempDir(), codec, budget)
	defer w.Close()
	want := map[int64]map[int][]string{} // date -> vbucket -> records
	for i := range 40000 {
		date := int64(rng.IntN(3))
		key := fmt.Appendf(nil, "key-%d", rng.IntN(30000)) // repeated keys: duplicates
		fields := bytes.Repeat([]byte{byte(i)}, rng.IntN(200))
		rec := AppendRowHeader(nil, key, uint64(rng.IntN(9)), uint64(i), int64(i)*1000, -25200)
		rec = binary.AppendUvarint(rec, uint64(len(fields)))
		rec = append(rec, fields...)
		if err := w.Add(date, key, rec); err != nil {
			t.Fatal(err)
		}
		if want[date] == nil {
			want[date] = map[int][]string{}
		}
		want[date][VBucket(key)] = append(want[date][VBucket(key)], string(rec))
	}
	if budget < 4<<20 && len(w.temps) == 0 {
		t.Fatal("a small budget spilled no run")
	}
	b := memstore.New()
	for _, date := range w.Dates() {
		var rows, ids bytes.Buffer
		rix, iix, err := w.Finish(date, &rows, &ids)
		if err != nil {
			t.Fatal(err)
		}
		// The index survives its JSON form.
		js, _ := json.Marshal(rix)
		var back Index
		if err := json.Unmarshal(js, &back); err != nil || !slices.Equal(back.Offset, rix.Offset) || !slices.Equal(back.Raw, rix.Raw) || !slices.Equal(back.Rows, rix.Rows) {
			t.Fatalf("index JSON round trip: %v", err)
		}
		put := func(key string, data []byte) {
			if err := b.Put(ctx, key, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
		}
		rk, ik := fmt.Sprintf("d%d.rows", date), fmt.Sprintf("d%d.ids", date)
		put(rk, rows.Bytes())
		put(ik, ids.Bytes())
		rd := NewReader(codec)
		check := func(lo, hi int) {
			var wantRecs []string
			for v := lo; v < hi; v++ {
				wantRecs = append(wantRecs, want[date][v]...)
			}
			data, err := rd.Load(ctx, b, SpanOf(rk, rix, lo, hi), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for len(data) > 0 {
				r, rest, err := ParseRow(data)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(data[:len(data)-len(rest)]))
				if v := VBucket(r.Key); v < lo || v >= hi {
					t.Fatalf("record of bucket %d in span [%d,%d)", v, lo, hi)
				}
				data = rest
			}
			slices.Sort(got)
			slices.Sort(wantRecs)
			if !slices.Equal(got, wantRecs) {
				t.Fatalf("date %d buckets [%d,%d): %d records, want %d", date, lo, hi, len(got), len(wantRecs))
			}
			idData, err := rd.Load(ctx, b, SpanOf(ik, iix, lo, hi), nil)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for len(idData) > 0 {
				id, rest, err := ParseID(idData)
				if err != nil {
					t.Fatal(err)
				}
				if v := VBucket(id.Key); v < lo || v >= hi {
					t.Fatalf("id of bucket %d in span [%d,%d)", v, lo, hi)
				}
				idData = rest
				n++
			}
			if n != len(wantRecs) {
				t.Fatalf("ids [%d,%d): %d, want %d", lo, hi, n, len(wantRecs))
			}
		}
		for v := range VBuckets {
			check(v, v+1)
		}
		check(0, VBuckets)
		check(100, 437)
		if got := rix.Rows[VBuckets]; got != w.Rows(date) {
			t.Errorf("index counts %d rows, writer %d", got, w.Rows(date))
		}
	}
	w.Close()
	if len(w.temps) != 0 {
		t.Error("temp files left")
	}
}
