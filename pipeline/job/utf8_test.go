package job_test

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"sluice/pipeline/mapper"
	"sluice/pipeline/storage/memstore"
)

// A line whose strings hold bytes that are not UTF-8 (in a value, a member
// name, an array and the dedupe key) is read with each such byte replaced
// by U+FFFD and counted; every STRING value of every file stays valid
// UTF-8, in Parquet and in CSV, so readers that refuse invalid strings
// (DuckDB, Athena) still read the partition.
func TestInvalidUTF8IsRepaired(t *testing.T) {
	t.Parallel()
	ts := "2026-10-30T18:00:00Z"
	// ev quotes the id with %q, which would escape the bad bytes: the
	// line is spelled out.
	badLine := `{"messageId":"bad` + "\xff" + `","timestamp":"` + ts + `","event":"Opened","userId":"u1",` +
		`"event_name":"Opened ` + "\xff\xfe" + ` app ` + "\xc3\x28" + `","prop` + "\xe2\x82" + `":"v","tags":["a` + "\xf0\x28\x8c\xbc" + `"]}`
	lines := []string{
		ev("ok", ts, `"event_name":"fine é"`),
		badLine,
		`{"messageId":"cut` + "\xff" + `","timestamp":"2026-10-30T1`, // invalid JSON as well: quarantined, its bytes kept
	}
	in := memstore.New()
	put(t, in, dayFolder("ios", "2026-10-30")+"a.gz", gz(lines...))

	for _, format := range []string{"parquet", "csv"} {
		out := memstore.New()
		spec := testSpec()
		spec.Format = format
		if format == "csv" {
			spec.Compression = "none"
		}
		res := runJob(t, newStep(in, memstore.New(), out, spec, window(t, "2026-10-30", "2026-10-30")))
		sum := res.summary
		if sum.RepairedUTF8 != 2 || sum.RowsWritten != 2 || sum.Quarantined[mapper.ReasonInvalidJSON] != 1 || !sum.Balanced {
			t.Fatalf("%s: repaired %d rows %d quarantined %v balanced %v (%s)", format, sum.RepairedUTF8, sum.RowsWritten, sum.Quarantined, sum.Balanced, sum.Reconciliation)
		}
		var values []string // every string value of the partition
		for _, k := range partitionFiles(t, out, "2026-10-30") {
			data := out.Objects()[k]
			if format == "parquet" {
				values = append(values, parquetStrings(t, data)...)
				continue
			}
			recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				values = append(values, r...)
			}
		}
		joined := strings.Join(values, "\n")
		for _, v := range values {
			if !utf8.ValidString(v) {
				t.Errorf("%s: invalid UTF-8 written: %q", format, v)
			}
		}
		for _, want := range []string{"bad\uFFFD", "Opened \uFFFD\uFFFD app \uFFFD(", "fine é", "[\"a\uFFFD(\uFFFD\uFFFD\"]"} {
			if !strings.Contains(joined, want) {
				t.Errorf("%s: no value %q among %q", format, want, values)
			}
		}
		recs := readQuarantine(t, out)
		if len(recs) != 1 {
			t.Fatalf("%s: %d quarantine records", format, len(recs))
		}
		raw, err := base64.StdEncoding.DecodeString(recs[0].RawBase64)
		if err != nil || string(raw) != lines[2] {
			t.Errorf("%s: quarantined bytes %q (%v), want %q", format, raw, err, lines[2])
		}
	}
}

// parquetStrings reads every BYTE_ARRAY value of a Parquet file, and the
// column names.
func parquetStrings(t testing.TB, data []byte) []string {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range f.Schema().Columns() {
		out = append(out, strings.Join(p, "."))
	}
	r := parquet.NewReader(f)
	defer r.Close()
	rows := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(rows)
		for _, row := range rows[:n] {
			for _, v := range row {
				if v.Kind() == parquet.ByteArray {
					out = append(out, string(v.ByteArray()))
				}
			}
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
