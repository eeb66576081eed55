package job_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"sluice/pipeline/mapper"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

// TestDSTAndOffsets places events around both 2026 DST changes and with
// non-UTC offsets, and checks date and wall clock.
func TestDSTAndOffsets(t *testing.T) {
	t.Parallel()
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
	in, out := memstore.New(), memstore.New()
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
	runJob(t, newStep(in, memstore.New(), out, spec, window(t, "2026-10-31", "2026-11-02")))
	runJob(t, newStep(in, memstore.New(), out, spec, window(t, "2026-03-07", "2026-03-09")))

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
	t.Parallel()
	in, out := memstore.New(), memstore.New()
	// received three days after it happened: still read
	put(t, in, dayFolder("ios", "2026-11-03")+"late.gz", gz(ev("late", "2026-10-30T12:00:00Z")))
	// received the UTC day before the window: read (Pacific evening)
	put(t, in, dayFolder("android", "2026-10-29")+"early.gz", gz(ev("eve", "2026-10-30T07:30:00Z")))
	// received two days before the window: not listed at all
	put(t, in, dayFolder("android", "2026-10-28")+"old.gz", gz(ev("old", "2026-10-28T12:00:00Z")))
	put(t, in, dayFolder("android", "2026-10-30")+"notes.txt", []byte("not a log"))
	res := runJob(t, newStep(in, memstore.New(), out, testSpec(), window(t, "2026-10-30", "2026-10-30")))
	ids := readPartition(t, out, "2026-10-30").byID(t)
	if _, ok := ids["late"]; !ok || len(ids) != 2 {
		t.Errorf("ids %v", ids)
	}
	if res.summary.InputObjects != 2 {
		t.Errorf("read %d objects, want 2", res.summary.InputObjects)
	}
}

func TestDuplicatesCollapse(t *testing.T) {
	t.Parallel()
	in, out := memstore.New(), memstore.New()
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
	res := runJob(t, newStep(in, memstore.New(), out, spec, window(t, "2026-10-30", "2026-10-31")))
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
	if res.summary.Duplicates != 4 {
		t.Errorf("duplicates %d, want 4", res.summary.Duplicates)
	}
}

func readQuarantine(t *testing.T, out *memstore.Bucket) []mapper.QuarantineRecord {
	t.Helper()
	var recs []mapper.QuarantineRecord
	for k, v := range out.Objects() {
		if !strings.HasPrefix(k, "_errors/") {
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(v))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			var r mapper.QuarantineRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

func TestQuarantine(t *testing.T) {
	t.Parallel()
	in, out := memstore.New(), memstore.New()
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
	s := newStep(in, memstore.New(), out, testSpec(), window(t, "2026-10-30", "2026-10-30"))
	res := runJob(t, s)

	want := map[string]int64{
		mapper.ReasonInvalidJSON: 2, mapper.ReasonNotObject: 1, mapper.ReasonMissingKey: 1, mapper.ReasonEmptyKey: 1, mapper.ReasonBadKey: 1,
		mapper.ReasonMissingTimestamp: 1, mapper.ReasonBadTimestamp: 2, mapper.ReasonCorruptObject: 2,
	}
	sum := res.summary
	var total int64
	for r, n := range want {
		total += n
		if sum.Quarantined[r] != n {
			t.Errorf("%s: %d, want %d (all: %v)", r, sum.Quarantined[r], n, sum.Quarantined)
		}
	}
	if sum.OutsideWindow != 1 {
		t.Errorf("outside window %d", sum.OutsideWindow)
	}
	if sum.QuarantineDir != s.QuarantineDir() {
		t.Errorf("quarantine folder %q, want %q", sum.QuarantineDir, s.QuarantineDir())
	}
	recs := readQuarantine(t, out)
	if int64(len(recs)) != total {
		t.Errorf("%d quarantine records, want %d", len(recs), total)
	}
	byLine := map[int64]mapper.QuarantineRecord{}
	for _, r := range recs {
		if r.Key == key {
			byLine[r.Line] = r
		}
	}
	if r := byLine[8]; r.Reason != mapper.ReasonBadTimestamp || r.Raw != lines[7] || r.Source != "ios" {
		t.Errorf("line 8: %+v", r)
	}
	if r := byLine[11]; r.Reason != mapper.ReasonInvalidJSON {
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
	t.Parallel()
	in, out := memstore.New(), memstore.New()
	ts := "2026-10-30T18:00:00Z"
	put(t, in, dayFolder("ios", "2026-10-30")+"a.gz", gz(
		ev("a", ts, `"properties":{"price":10,"flag":true,"code":7,"tags":["x","y"],"always_null":null}`),
		ev("b", ts, `"properties":{"price":10.5,"flag":1,"code":"A7","tags":[]}`),
	))
	// the widest type is decided over the whole run, across dates
	put(t, in, dayFolder("ios", "2026-10-31")+"b.gz", gz(ev("c", "2026-10-31T18:00:00Z", `"properties":{"count":3}`)))
	put(t, in, dayFolder("ios", "2026-11-01")+"c.gz", gz(ev("d", "2026-11-01T18:00:00Z", `"properties":{"count":3.25}`)))
	runJob(t, newStep(in, memstore.New(), out, testSpec(), window(t, "2026-10-30", "2026-11-01")))
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
	t.Parallel()
	in, out := memstore.New(), memstore.New()
	put(t, in, dayFolder("ios", "2026-10-30")+"empty.gz", nil)
	put(t, in, dayFolder("ios", "2026-10-30")+"emptygz.gz", gz())
	put(t, in, dayFolder("ios", "2026-10-30")+"blank.gz", gz("", "  ", ""))
	// a stale file in a partition that is now empty (and was never built
	// by Sluice, so the shrink guard has nothing to protect)
	put(t, out, transform.PartitionPath(mustDate(t, "2026-10-30"))+"part-00000.parquet", []byte("stale"))
	res := runJob(t, newStep(in, memstore.New(), out, testSpec(), window(t, "2026-10-30", "2026-10-30")))
	if s := res.summary; s.LinesRead != 0 || s.InputObjects != 3 {
		t.Errorf("summary %+v", s)
	}
	if files := partitionFiles(t, out, "2026-10-30"); len(files) != 0 {
		t.Errorf("partition not emptied: %v", files)
	}
	if res.summary.Removed != 1 {
		t.Errorf("removed %d files, want 1", res.summary.Removed)
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	in := memstore.New()
	put(t, in, dayFolder("ios", "2026-10-30")+"a.gz", gz(
		ev("q1", "2026-10-30T18:00:00Z", `"note":"comma, \"quote\" and\nnewline"`),
		ev("q2", "2026-10-31T18:00:00Z", `"only_on_31":5`),
	))
	for _, comp := range []string{"none", "gzip"} {
		out := memstore.New()
		spec := testSpec()
		spec.Format, spec.Compression = "csv", comp
		runJob(t, newStep(in, memstore.New(), out, spec, window(t, "2026-10-30", "2026-10-31")))
		ext := map[string]string{"none": ".csv", "gzip": ".csv.gz"}[comp]
		var headers [][]string
		for _, d := range []string{"2026-10-30", "2026-10-31"} {
			files := partitionFiles(t, out, d)
			if len(files) != 1 || !strings.HasSuffix(files[0], ext) {
				t.Fatalf("%s %s: files %v", comp, d, files)
			}
			var r io.Reader = bytes.NewReader(out.Objects()[files[0]])
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
}

// testData writes a small input with duplicates and two sources.
func testData(t testing.TB, in storage.Bucket) {
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

// byFile keys a partition's files by date and file number, without the
// build token, so that two builds can be compared file by file.
func byFile(objs map[string][]byte) map[string][]byte {
	re := regexp.MustCompile(`^(year=.*/part-\d{5})-[0-9a-f]{12}(\..*)$`)
	out := map[string][]byte{}
	for k, v := range objs {
		if m := re.FindStringSubmatch(k); m != nil {
			out[m[1]+m[2]] = v
		}
	}
	return out
}

func TestRerunIsByteIdentical(t *testing.T) {
	t.Parallel()
	in := memstore.New()
	testData(t, in)
	w := window(t, "2026-10-29", "2026-10-31")
	spec := testSpec()
	out1, scratch := memstore.New(), memstore.New()
	s := newStep(in, scratch, out1, spec, w)
	res := runJob(t, s)
	if n := len(byFile(out1.Objects())); n != 3 {
		t.Fatalf("%d output files", n)
	}
	// A retried map leaves the same scratch objects.
	before := scratch.Objects()
	for i := range res.shards {
		if _, err := s.Map(t.Context(), i, res.shards); err != nil {
			t.Fatal(err)
		}
	}
	after := scratch.Objects()
	if len(before) != len(after) {
		t.Errorf("scratch objects %d -> %d", len(before), len(after))
	}
	for k, v := range before {
		if !bytes.Equal(v, after[k]) {
			t.Errorf("%s changed on retry", k)
		}
	}
	// A whole rerun by another run, with other shard sizes, writes the
	// same bytes.
	out2 := memstore.New()
	spec.ShardBytes = 1
	s2 := newStep(in, memstore.New(), out2, spec, w)
	s2.RunID = "run-other"
	runJob(t, s2)
	a, b := byFile(out1.Objects()), byFile(out2.Objects())
	if len(a) != len(b) {
		t.Errorf("%d and %d files", len(a), len(b))
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs between runs", k)
		}
	}
	if err := s.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(scratch.Objects()); n != 0 {
		t.Errorf("%d objects left in scratch after cleanup", n)
	}
	for k := range out1.Objects() {
		if strings.HasPrefix(k, "_staging/") {
			t.Errorf("staging left: %s", k)
		}
	}
}
