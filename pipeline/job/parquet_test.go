package job_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

// The files pick their encodings from the data: repeated values (event
// names, device ids, screen sizes) are dictionary-encoded, unique ones
// (message ids) are not, and timestamps are delta-encoded; row groups end
// by size.
func TestParquetEncodings(t *testing.T) {
	t.Parallel()
	in := memstore.New()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 3000
	if _, err := segmentgen.Generate(context.Background(), in, cfg); err != nil {
		t.Fatal(err)
	}
	out := memstore.New()
	s := newStep(in, memstore.New(), out, transform.DefaultSpec(), genWindow(cfg))
	s.ReduceOptions.RowGroupBytes = 256 << 10
	runJob(t, s)
	files := partitionFiles(t, out, "2024-03-10")
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	data := out.Objects()[files[0]]
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	md := f.Metadata()
	if len(md.RowGroups) < 2 {
		t.Errorf("%d row groups of at most 256 KiB in a %d-byte file", len(md.RowGroups), len(data))
	}
	encodings := map[string][]format.Encoding{}
	for _, c := range md.RowGroups[0].Columns {
		encodings[c.MetaData.PathInSchema[0]] = c.MetaData.Encoding
	}
	for col, want := range map[string]format.Encoding{
		"event":                 format.RLEDictionary,
		"context_device_id":     format.RLEDictionary,
		"context_screen_width":  format.RLEDictionary,
		"message_id":            format.DeltaLengthByteArray,
		"timestamp":             format.DeltaBinaryPacked,
		"timestamp_utc":         format.DeltaBinaryPacked,
		"properties_quantity":   format.RLEDictionary,
		"context_network_wifi":  format.Plain,
		"properties_price":      format.Plain,
		"original_timestamp":    format.DeltaLengthByteArray,
		"context_app_namespace": format.RLEDictionary,
	} {
		if !slices.Contains(encodings[col], want) {
			t.Errorf("%s: encodings %v, want %v among them", col, encodings[col], want)
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint(encodings))
	}
}

// One huge string value does not bloat the footer: a column chunk whose
// min or max would be longer than 4 KiB keeps no bounds (null count
// only), every other column keeps its statistics, and the value itself is
// written whole.
func TestHugeValueKeepsFooterSmall(t *testing.T) {
	t.Parallel()
	ts := "2026-10-30T18:00:00Z"
	huge := strings.Repeat("x", 20<<20)
	in, out := memstore.New(), memstore.New()
	put(t, in, dayFolder("ios", "2026-10-30")+"a.gz", gz(
		ev("small", ts, `"note":"short"`),
		ev("huge", ts, `"note":"`+huge+`"`),
	))
	runJob(t, newStep(in, memstore.New(), out, testSpec(), window(t, "2026-10-30", "2026-10-30")))
	files := partitionFiles(t, out, "2026-10-30")
	data := out.Objects()[files[0]]
	footer := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	if footer > 64<<10 {
		t.Errorf("footer of %d bytes", footer)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Metadata().RowGroups[0].Columns {
		st := c.MetaData.Statistics
		switch col := c.MetaData.PathInSchema[0]; col {
		case "note":
			if st.MinValue != nil || st.MaxValue != nil || st.NullCount != 0 {
				t.Errorf("note: statistics min %d bytes, max %d bytes, nulls %d", len(st.MinValue), len(st.MaxValue), st.NullCount)
			}
		case "message_id":
			if string(st.MinValue) != "huge" || string(st.MaxValue) != "small" {
				t.Errorf("message_id: min %q max %q", st.MinValue, st.MaxValue)
			}
		}
	}
	rows := readPartition(t, out, "2026-10-30").byID(t)
	if got := rows["huge"]["note"].String(); got != huge {
		t.Errorf("huge value read back as %d bytes", len(got))
	}
	if got := rows["small"]["note"].String(); got != "short" {
		t.Errorf("small note %q", got)
	}
}
