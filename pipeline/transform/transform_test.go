package transform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func TestSpecValidate(t *testing.T) {
	if err := DefaultSpec().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Spec){
		"sources":         func(s *Spec) { s.Sources = nil },
		"time_zone":       func(s *Spec) { s.TimeZone = "Mars/Olympus" },
		"format":          func(s *Spec) { s.Format = "orc" },
		"compression":     func(s *Spec) { s.Compression = "lz4" },
		"shard_bytes":     func(s *Spec) { s.ShardBytes = 0 },
		"dedupe_key":      func(s *Spec) { s.DedupeKey = "" },
		"timestamp_field": func(s *Spec) { s.TimestampField = "" },
	}
	for field, mutate := range cases {
		s := DefaultSpec()
		mutate(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v does not name the field", field, err)
		}
	}
	s := DefaultSpec()
	s.Format, s.Compression = "csv", "snappy"
	if err := s.Validate(); err == nil {
		t.Error("csv with snappy accepted")
	}
}

// TestDSTAndOffsets places events around both 2026 DST changes and with
// non-UTC offsets, and checks date and wall clock.
func TestDSTAndOffsets(t *testing.T) {
	cases := []struct {
		ts, date, wall string
	}{
		// fall back: 2026-11-01 has 25 hours; 01:00-02:00 happens twice
		{"2026-11-01T06:59:59Z", "2026-10-31", "2026-10-31 23:59:59"},
		{"2026-11-01T07:00:00Z", "2026-11-01", "2026-11-01 00:00:00"},
		{"2026-11-01T08:30:00Z", "2026-11-01", "2026-11-01 01:30:00"}, // PDT
		{"2026-11-01T09:30:00Z", "2026-11-01", "2026-11-01 01:30:00"}, // PST
		{"2026-11-01T18:45:00+09:00", "2026-11-01", "2026-11-01 01:45:00"},
		{"2026-11-02T07:59:59.999Z", "2026-11-01", "2026-11-01 23:59:59"},
		{"2026-11-02T08:00:00Z", "2026-11-02", "2026-11-02 00:00:00"},
		{"2026-11-01T23:00:00-01:00", "2026-11-01", "2026-11-01 16:00:00"},
		// spring forward: 2026-03-08 has 23 hours; 02:00-03:00 does not exist
		{"2026-03-08T07:59:59Z", "2026-03-07", "2026-03-07 23:59:59"},
		{"2026-03-08T08:00:00Z", "2026-03-08", "2026-03-08 00:00:00"},
		{"2026-03-08T09:59:59Z", "2026-03-08", "2026-03-08 01:59:59"},
		{"2026-03-08T10:00:00Z", "2026-03-08", "2026-03-08 03:00:00"},
		{"2026-03-09T06:59:59Z", "2026-03-08", "2026-03-08 23:59:59"},
		{"2026-03-09T07:00:00Z", "2026-03-09", "2026-03-09 00:00:00"},
		{"2026-03-08T19:30:00+09:00", "2026-03-08", "2026-03-08 03:30:00"},
	}
	in, scratch, out := newMemBucket(), newMemBucket(), newMemBucket()
	var fall, spring []string
	for i, c := range cases {
		line := ev("m"+string(rune('a'+i)), c.ts)
		if strings.HasPrefix(c.ts, "2026-11") || strings.HasPrefix(c.ts, "2026-10") {
			fall = append(fall, line)
		} else {
			spring = append(spring, line)
		}
	}
	put(t, in, dayFolder("ios", "2026-11-01")+"a.gz", gz(fall...))
	put(t, in, dayFolder("ios", "2026-03-08")+"a.gz", gz(spring...))
	spec := testSpec()
	runJob(t, in, scratch, out, spec, window(t, "2026-10-31", "2026-11-02"), ReduceOptions{})
	scratch2 := newMemBucket()
	runJob(t, in, scratch2, out, spec, window(t, "2026-03-07", "2026-03-09"), ReduceOptions{})

	for i, c := range cases {
		id := "m" + string(rune('a'+i))
		tb := readPartition(t, out, c.date)
		row, ok := tb.byID(t)[id]
		if !ok {
			t.Errorf("%s: not in partition %s", c.ts, c.date)
			continue
		}
		if got := localTime(row["timestamp"]); got != c.wall {
			t.Errorf("%s: wall clock %s, want %s", c.ts, got, c.wall)
		}
		if tb.types["timestamp"] != "TIMESTAMP(utc=false)" || tb.types["timestamp_utc"] != "TIMESTAMP(utc=true)" {
			t.Errorf("timestamp types %v", tb.types)
		}
	}
	tb := readPartition(t, out, "2026-11-01")
	if len(tb.rows) != 6 {
		t.Errorf("2026-11-01 has %d rows, want 6", len(tb.rows))
	}
	// Columns are sorted, dropped fields are gone, nested fields flattened.
	if !slices.IsSorted(tb.cols) {
		t.Errorf("columns not sorted: %v", tb.cols)
	}
	for _, c := range tb.cols {
		if strings.HasPrefix(c, "integrations") || strings.HasPrefix(c, "_metadata") {
			t.Errorf("dropped field present: %s", c)
		}
	}
	for _, want := range []string{"context_device_ad_tracking_enabled", "context_device_model", "message_id", "user_id"} {
		if !slices.Contains(tb.cols, want) {
			t.Errorf("column %s missing from %v", want, tb.cols)
		}
	}
	if tb.types["context_device_ad_tracking_enabled"] != "BOOLEAN" {
		t.Errorf("bool column type %s", tb.types["context_device_ad_tracking_enabled"])
	}
}

func TestLateEventsAndLookback(t *testing.T) {
	in, scratch, out := newMemBucket(), newMemBucket(), newMemBucket()
	// received three days after it happened: still read
	put(t, in, dayFolder("ios", "2026-11-03")+"late.gz", gz(ev("late", "2026-10-30T12:00:00Z")))
	// received the UTC day before the window: read (Pacific evening)
	put(t, in, dayFolder("android", "2026-10-29")+"early.gz", gz(ev("eve", "2026-10-30T07:30:00Z")))
	// received two days before the window: not listed at all
	put(t, in, dayFolder("android", "2026-10-28")+"old.gz", gz(ev("old", "2026-10-28T12:00:00Z")))
	put(t, in, dayFolder("android", "2026-10-30")+"notes.txt", []byte("not a log"))
	res := runJob(t, in, scratch, out, testSpec(), window(t, "2026-10-30", "2026-10-30"), ReduceOptions{})
	ids := readPartition(t, out, "2026-10-30").byID(t)
	if _, ok := ids["late"]; !ok || len(ids) != 2 {
		t.Errorf("ids %v", ids)
	}
	var objs int
	for _, sh := range res.shards {
		objs += len(sh.Objects)
	}
	if objs != 2 {
		t.Errorf("planned %d objects, want 2", objs)
	}
}

func TestDuplicatesCollapse(t *testing.T) {
	in, scratch, out := newMemBucket(), newMemBucket(), newMemBucket()
	ts := "2026-10-30T18:00:00Z"
	put(t, in, dayFolder("ios", "2026-10-30")+"a.gz", gz(
		ev("d1", ts, `"copy":"ios-a-1"`),
		ev("d1", ts, `"copy":"ios-a-2"`), // same file
		ev("solo", ts),
	))
	put(t, in, dayFolder("ios", "2026-10-31")+"b.gz", gz(ev("d1", ts, `"copy":"ios-b"`)))
	put(t, in, dayFolder("android", "2026-10-31")+"c.gz", gz(ev("d1", ts, `"copy":"android-c"`)))
	// A conflicting copy whose timestamp lands on another date: the
	// smallest (key, line) wins across dates too. android sorts first.
	put(t, in, dayFolder("android", "2026-10-30")+"x.gz", gz(ev("d2", "2026-10-31T18:00:00Z", `"copy":"android-x"`)))
	put(t, in, dayFolder("ios", "2026-10-30")+"y.gz", gz(ev("d2", "2026-10-30T18:00:00Z", `"copy":"ios-y"`)))
	spec := testSpec()
	spec.ShardBytes = 1 // one object per shard: copies meet only in the reduce
	res := runJob(t, in, scratch, out, spec, window(t, "2026-10-30", "2026-10-31"), ReduceOptions{})
	d30 := readPartition(t, out, "2026-10-30").byID(t)
	d31 := readPartition(t, out, "2026-10-31").byID(t)
	if len(d30) != 2 || d30["d1"]["copy"].String() != "android-c" {
		t.Errorf("2026-10-30: %d rows, d1 copy %v", len(d30), d30["d1"]["copy"])
	}
	if _, ok := d30["d2"]; ok {
		t.Error("d2 kept on 2026-10-30 although a smaller copy is on 2026-10-31")
	}
	if len(d31) != 1 || d31["d2"]["copy"].String() != "android-x" {
		t.Errorf("2026-10-31: %v", d31)
	}
	var dups int64
	for _, p := range res.parts {
		dups += p.Duplicates
	}
	if dups != 4 {
		t.Errorf("duplicates %d, want 4", dups)
	}
}

func readQuarantine(t *testing.T, out *memBucket) []QuarantineRecord {
	t.Helper()
	var recs []QuarantineRecord
	for k, v := range out.snapshot() {
		if !strings.HasPrefix(k, "_errors/") {
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(v))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			var r QuarantineRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

func TestQuarantine(t *testing.T) {
	in, scratch, out := newMemBucket(), newMemBucket(), newMemBucket()
	ts := "2026-10-30T18:00:00Z"
	key := dayFolder("ios", "2026-10-30") + "bad.gz"
	lines := []string{
		ev("ok1", ts),
		`{"messageId":"cut","timestamp":"2026-10-30T1`, // 2 invalid_json
		`["an","array"]`,                                // 3 not_object
		`{"timestamp":"` + ts + `"}`,                    // 4 missing_key
		`{"messageId":"","timestamp":"` + ts + `"}`,     // 5 empty_key
		`{"messageId":42,"timestamp":"` + ts + `"}`,     // 6 bad_key
		`{"messageId":"nots"}`,                          // 7 missing_timestamp
		`{"messageId":"badts","timestamp":"yesterday"}`, // 8 bad_timestamp
		`{"messageId":"numts","timestamp":1730000000}`,  // 9 bad_timestamp
		``, // 10 blank: skipped
		`{"messageId":"badnum","timestamp":"` + ts + `","n":1.2.3}`, // 11 invalid_json
		ev("outside", "2026-11-05T18:00:00Z"),                       // 12 outside window
		ev("ok2", ts),                                               // 13
	}
	put(t, in, key, gz(lines...))
	put(t, in, dayFolder("android", "2026-10-30")+"notgzip.gz", []byte(ev("plain", ts)))
	var junk strings.Builder // incompressible, so the cut lands inside it
	for x := uint32(1); junk.Len() < 5000; x = x*1664525 + 1013904223 {
		junk.WriteByte('a' + byte(x>>24)%26)
	}
	truncated := gz(ev("t1", ts), ev("t2", ts), junk.String())
	put(t, in, dayFolder("android", "2026-10-30")+"truncated.gz", truncated[:len(truncated)-30])
	res := runJob(t, in, scratch, out, testSpec(), window(t, "2026-10-30", "2026-10-30"), ReduceOptions{})

	want := map[string]int64{
		ReasonInvalidJSON: 2, ReasonNotObject: 1, ReasonMissingKey: 1, ReasonEmptyKey: 1, ReasonBadKey: 1,
		ReasonMissingTimestamp: 1, ReasonBadTimestamp: 2, ReasonCorruptObject: 2,
	}
	var total MapStats
	for _, m := range res.maps {
		total.Add(m)
	}
	for r, n := range want {
		if total.Quarantined[r] != n {
			t.Errorf("%s: %d, want %d (all: %v)", r, total.Quarantined[r], n, total.Quarantined)
		}
	}
	if total.OutsideWindow != 1 {
		t.Errorf("outside window %d", total.OutsideWindow)
	}
	recs := readQuarantine(t, out)
	if int64(len(recs)) != total.QuarantinedTotal() || res.quarantine != int64(len(recs)) {
		t.Errorf("%d quarantine records, stats say %d", len(recs), total.QuarantinedTotal())
	}
	byLine := map[int64]QuarantineRecord{}
	for _, r := range recs {
		if r.Key == key {
			byLine[r.Line] = r
		}
	}
	if r := byLine[8]; r.Reason != ReasonBadTimestamp || r.Raw != lines[7] || r.Source != "ios" {
		t.Errorf("line 8: %+v", r)
	}
	if r := byLine[11]; r.Reason != ReasonInvalidJSON {
		t.Errorf("line 11: %+v", r)
	}
	ids := readPartition(t, out, "2026-10-30").byID(t)
	for _, id := range []string{"ok1", "ok2", "t1", "t2"} {
		if _, ok := ids[id]; !ok {
			t.Errorf("%s missing", id)
		}
	}
	if len(ids) != 4 {
		t.Errorf("%d rows", len(ids))
	}
}

func TestTypeDrift(t *testing.T) {
	in, scratch, out := newMemBucket(), newMemBucket(), newMemBucket()
	ts := "2026-10-30T18:00:00Z"
	put(t, in, dayFolder("ios", "2026-10-30")+"a.gz", gz(
		ev("a", ts, `"properties":{"price":10,"flag":true,"code":7,"tags":["x","y"],"always_null":null}`),
		ev("b", ts, `"properties":{"price":10.5,"flag":1,"code":"A7","tags":[]}`),
	))
	// the widest type is decided over the whole run, across dates
	put(t, in, dayFolder("ios", "2026-10-31")+"b.gz", gz(ev("c", "2026-10-31T18:00:00Z", `"properties":{"count":3}`)))
	put(t, in, dayFolder("ios", "2026-11-01")+"c.gz", gz(ev("d", "2026-11-01T18:00:00Z", `"properties":{"count":3.25}`)))
	runJob(t, in, scratch, out, testSpec(), window(t, "2026-10-30", "2026-11-01"), ReduceOptions{})
	tb := readPartition(t, out, "2026-10-30")
	wantTypes := map[string]string{
		"properties_price":       "DOUBLE",
		"properties_flag":        "STRING",
		"properties_code":        "STRING",
		"properties_tags":        "STRING",
		"properties_always_null": "STRING",
	}
	for c, w := range wantTypes {
		if tb.types[c] != w {
			t.Errorf("%s: %s, want %s", c, tb.types[c], w)
		}
	}
	rows := tb.byID(t)
	if v := rows["a"]["properties_price"].Double(); v != 10 {
		t.Errorf("price a %v", v)
	}
	if v := rows["a"]["properties_flag"].String(); v != "true" {
		t.Errorf("flag a %q", v)
	}
	if v := rows["b"]["properties_flag"].String(); v != "1" {
		t.Errorf("flag b %q", v)
	}
	if v := rows["a"]["properties_tags"].String(); v != `["x","y"]` {
		t.Errorf("tags a %q", v)
	}
	if !rows["a"]["properties_always_null"].IsNull() {
		t.Error("null not null")
	}
	if got := readPartition(t, out, "2026-10-31").types["properties_count"]; got != "DOUBLE" {
		t.Errorf("count on 2026-10-31: %s, want DOUBLE (run-wide)", got)
	}
	if _, ok := tb.types["properties_count"]; ok {
		t.Error("2026-10-30 has a column only seen on other dates")
	}
}

func TestEmptyObjects(t *testing.T) {
	in, scratch, out := newMemBucket(), newMemBucket(), newMemBucket()
	put(t, in, dayFolder("ios", "2026-10-30")+"empty.gz", nil)
	put(t, in, dayFolder("ios", "2026-10-30")+"emptygz.gz", gz())
	put(t, in, dayFolder("ios", "2026-10-30")+"blank.gz", gz("", "  ", ""))
	// a stale file from an earlier run in a partition that is now empty
	put(t, out, mustDate(t, "2026-10-30").PartitionPath()+"part-00000.parquet", []byte("stale"))
	res := runJob(t, in, scratch, out, testSpec(), window(t, "2026-10-30", "2026-10-30"), ReduceOptions{})
	if len(res.maps) != 1 || res.maps[0].LinesRead != 0 || res.maps[0].Objects != 3 {
		t.Errorf("maps %+v", res.maps)
	}
	if len(out.snapshot()) != 0 {
		t.Errorf("output not empty: %v", out.sortedKeys(""))
	}
	if len(res.parts[0].Removed) != 1 {
		t.Errorf("removed %v", res.parts[0].Removed)
	}
}

func TestCSV(t *testing.T) {
	in, scratch, out := newMemBucket(), newMemBucket(), newMemBucket()
	put(t, in, dayFolder("ios", "2026-10-30")+"a.gz", gz(
		ev("q1", "2026-10-30T18:00:00Z", `"note":"comma, \"quote\" and\nnewline"`),
		ev("q2", "2026-10-31T18:00:00Z", `"only_on_31":5`),
	))
	for _, comp := range []string{"none", "gzip"} {
		spec := testSpec()
		spec.Format, spec.Compression = "csv", comp
		runJob(t, in, scratch, out, spec, window(t, "2026-10-30", "2026-10-31"), ReduceOptions{})
		ext := map[string]string{"none": "csv", "gzip": "csv.gz"}[comp]
		var headers [][]string
		for _, d := range []string{"2026-10-30", "2026-10-31"} {
			data := out.snapshot()[mustDate(t, d).PartitionPath()+"part-00000."+ext]
			var r io.Reader = bytes.NewReader(data)
			if comp == "gzip" {
				zr, err := gzip.NewReader(r)
				if err != nil {
					t.Fatal(err)
				}
				r = zr
			}
			recs, err := csv.NewReader(r).ReadAll()
			if err != nil || len(recs) != 2 {
				t.Fatalf("%s %s: %v %d records", comp, d, err, len(recs))
			}
			headers = append(headers, recs[0])
			row := map[string]string{}
			for i, c := range recs[0] {
				row[c] = recs[1][i]
			}
			if d == "2026-10-30" {
				if row["note"] != "comma, \"quote\" and\nnewline" {
					t.Errorf("note %q", row["note"])
				}
				if row["timestamp"] != "2026-10-30 11:00:00.000000" || row["timestamp_utc"] != "2026-10-30 18:00:00.000000Z" {
					t.Errorf("timestamps %q %q", row["timestamp"], row["timestamp_utc"])
				}
				if row["only_on_31"] != "" {
					t.Errorf("only_on_31 %q", row["only_on_31"])
				}
			}
		}
		if !slices.Equal(headers[0], headers[1]) || !slices.Contains(headers[0], "only_on_31") {
			t.Errorf("%s: headers differ or miss columns: %v vs %v", comp, headers[0], headers[1])
		}
	}
	// an explicit column list is the exact CSV layout
	spec := testSpec()
	spec.Format, spec.Compression = "csv", "none"
	runJob(t, in, newMemBucket(), out, spec, window(t, "2026-10-30", "2026-10-30"), ReduceOptions{Columns: []string{"message_id", "timestamp", "nope"}})
	data := out.snapshot()[mustDate(t, "2026-10-30").PartitionPath()+"part-00000.csv"]
	if want := "message_id,timestamp,nope\nq1,2026-10-30 11:00:00.000000,\n"; string(data) != want {
		t.Errorf("explicit columns: %q", data)
	}
}

// testData writes a small input with duplicates and two sources.
func testData(t testing.TB, in *memBucket) {
	for i, src := range []string{"ios", "android"} {
		for day := 29; day <= 31; day++ {
			var lines []string
			for j := 0; j < 50; j++ {
				id := string(rune('a'+j%26)) + string(rune('a'+day-29)) + string(rune('0'+j/26))
				ts := "2026-10-" + string(rune('0'+day/10)) + string(rune('0'+day%10)) + "T" + string(rune('0'+j%24/10)) + string(rune('0'+j%24%10)) + ":15:00Z"
				lines = append(lines, ev(id, ts, `"src":"`+src+`"`, `"n":`+string(rune('0'+i))))
			}
			put(t, in, dayFolder(src, "2026-10-"+string(rune('0'+day/10))+string(rune('0'+day%10)))+"part.gz", gz(lines...))
		}
	}
}

func TestRerunIsByteIdentical(t *testing.T) {
	in := newMemBucket()
	testData(t, in)
	w := window(t, "2026-10-29", "2026-10-31")
	spec := testSpec()
	out1 := newMemBucket()
	scratch := newMemBucket()
	res := runJob(t, in, scratch, out1, spec, w, ReduceOptions{})
	if len(out1.snapshot()) != 3 {
		t.Fatalf("outputs %v", out1.sortedKeys(""))
	}
	// map retry leaves the same scratch objects
	before := scratch.snapshot()
	for _, sh := range res.shards {
		if _, err := MapShard(context.Background(), in, scratch, scratchPrefix, spec, w, sh); err != nil {
			t.Fatal(err)
		}
	}
	after := scratch.snapshot()
	if len(before) != len(after) {
		t.Errorf("scratch objects %d -> %d", len(before), len(after))
	}
	for k, v := range before {
		if k != manifestKey(normPrefix(scratchPrefix), 0) && !bytes.Equal(v, after[k]) {
			t.Errorf("%s changed on retry", k)
		}
	}
	// a whole rerun with other shard sizes gives the same bytes
	out2 := newMemBucket()
	spec.ShardBytes = 1
	runJob(t, in, newMemBucket(), out2, spec, w, ReduceOptions{})
	a, b := out1.snapshot(), out2.snapshot()
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs between runs", k)
		}
	}
	if err := Cleanup(context.Background(), scratch, scratchPrefix); err != nil {
		t.Fatal(err)
	}
	if n := len(scratch.snapshot()); n != 0 {
		t.Errorf("%d objects left after cleanup", n)
	}
}

func TestRebuildOnePartition(t *testing.T) {
	in, scratch, out := newMemBucket(), newMemBucket(), newMemBucket()
	testData(t, in)
	w := window(t, "2026-10-29", "2026-10-31")
	spec := testSpec()
	res := runJob(t, in, scratch, out, spec, w, ReduceOptions{})
	d := mustDate(t, "2026-10-30")
	put(t, out, d.PartitionPath()+"part-00001.parquet", []byte("left over from an old run"))
	before := out.snapshot()
	out.resetLog()
	dates, err := ListMapDates(context.Background(), scratch, scratchPrefix)
	if err != nil || len(dates) != 3 {
		t.Fatalf("dates %v %v", dates, err)
	}
	ps, err := ReducePartition(context.Background(), scratch, scratchPrefix, out, spec, d, len(res.shards), ReduceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range out.written {
		if !strings.HasPrefix(k, d.PartitionPath()) && !strings.HasPrefix(k, "_staging/") {
			t.Errorf("rebuild touched %s", k)
		}
	}
	after := out.snapshot()
	if !bytes.Equal(before[ps.File], after[ps.File]) {
		t.Error("rebuilt file differs")
	}
	if _, ok := after[d.PartitionPath()+"part-00001.parquet"]; ok {
		t.Error("stale file kept")
	}
	for k := range after {
		if strings.HasPrefix(k, "_staging/") {
			t.Errorf("staging left: %s", k)
		}
	}
}
