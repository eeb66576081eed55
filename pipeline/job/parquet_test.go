package job_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
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
