package formats_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"sluice/pipeline/column"
	"sluice/pipeline/format"
	"sluice/pipeline/format/formats"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
)

// rows yields sorted rows from memory.
type rows []intermediate.SortedRow

func (r *rows) Next() (*intermediate.SortedRow, error) {
	if len(*r) == 0 {
		return nil, nil
	}
	row := &(*r)[0]
	*r = (*r)[1:]
	return row, nil
}

// fields encodes (column, value) pairs as a record's fields.
func fields(vals ...any) []byte {
	b := binary.AppendUvarint(nil, uint64(len(vals)/2))
	for i := 0; i < len(vals); i += 2 {
		b = binary.AppendUvarint(b, uint64(vals[i].(int)))
		switch v := vals[i+1].(type) {
		case string:
			b = binary.AppendUvarint(append(b, intermediate.KindString), uint64(len(v)))
			b = append(b, v...)
		case int64:
			b = binary.AppendVarint(append(b, intermediate.KindInt), v)
		}
	}
	return b
}

// Every format encodes a fragment, assembles it into a file with the rows
// it was given, and says what the planner and the DDL need; a name finds
// it.
func TestEveryFormat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cols := []column.Column{{Name: "event", Type: column.TypeString}, {Name: "n", Type: column.TypeBigint},
		{Name: "timestamp", Type: column.TypeLocalTime}, {Name: "timestamp_utc", Type: column.TypeUTCTime}}
	seen := map[string]bool{}
	for _, f := range formats.All() {
		name := f.Name()
		if seen[name] {
			t.Fatalf("two formats are called %s", name)
		}
		seen[name] = true
		if got, err := formats.ByName(name); err != nil || got.Name() != name {
			t.Errorf("ByName(%s) = %v, %v", name, got, err)
		}
		if len(f.Compressions()) == 0 || f.Ext(format.Compression(f, "")) == "" || f.OutputRatio("") <= 0 {
			t.Errorf("%s: compressions %v, ext %q, ratio %v", name, f.Compressions(), f.Ext(""), f.OutputRatio(""))
		}
		if h := f.Hive(""); h.SerDe == "" || h.InputFormat == "" || h.Params["classification"] != name {
			t.Errorf("%s: Hive storage %+v", name, h)
		}
		for _, comp := range f.Compressions() {
			o := format.Options{Compression: comp, TimeZone: "America/Los_Angeles"}
			in := rows{
				{US: 1_000_000, Off: -8 * 3600, FP: 1, Fields: fields(0, "Opened", 1, int64(7))},
				{US: 2_000_000, Off: -8 * 3600, FP: 2, Fields: fields(0, "Closed")},
				{US: 3_000_000, Off: -8 * 3600, FP: 3, Fields: fields(1, int64(-1))},
			}
			frag := format.Fragment{Columns: cols, From: 0, To: len(cols), Rows: 3, Values: []int64{2, 2, 3, 3}, StringBytes: []int64{12, 0, 0, 0}, Header: true}
			var buf bytes.Buffer
			n, err := f.Encode(&buf, o, frag, &in)
			if err != nil || n != 3 {
				t.Fatalf("%s/%s: encoded %d rows, %v", name, comp, n, err)
			}
			b := memstore.New()
			if err := b.Put(ctx, "frag", bytes.NewReader(buf.Bytes())); err != nil {
				t.Fatal(err)
			}
			secs, err := f.Assemble(ctx, b, o, [][]format.FragmentRef{{{Key: "frag", Size: int64(buf.Len())}}})
			if err != nil {
				t.Fatalf("%s/%s: assemble: %v", name, comp, err)
			}
			key := "part-00000." + f.Ext(comp)
			if err := storage.Compose(ctx, b, key, secs); err != nil {
				t.Fatal(err)
			}
			rc, err := b.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			file, _ := io.ReadAll(rc)
			rc.Close()
			if cv, ok := f.(format.Converter); ok {
				got, _, err := cv.FileColumns(ctx, b, key, int64(len(file)))
				if err != nil || len(got) != len(cols) || got[0] != cols[0] || got[3] != cols[3] {
					t.Errorf("%s/%s: the file's columns %v, %v; want %v", name, comp, got, err, cols)
				}
			} else if name == "csv" {
				text := file
				if comp == "gzip" {
					zr, err := gzip.NewReader(bytes.NewReader(file))
					if err != nil {
						t.Fatal(err)
					}
					text, _ = io.ReadAll(zr)
				}
				if lines := strings.Split(strings.TrimSpace(string(text)), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "event,n,") || !strings.HasPrefix(lines[2], "Closed,,") {
					t.Errorf("%s/%s: file %q, want a header and 3 rows", name, comp, text)
				}
			}
		}
	}
	if _, err := formats.ByName("orc"); err == nil || !strings.Contains(err.Error(), "parquet") {
		t.Errorf("ByName(orc): %v, want an error naming the formats", err)
	}
}
