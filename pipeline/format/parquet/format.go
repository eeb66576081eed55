package parquet

import (
	"context"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/column"
	"sluice/pipeline/format"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
)

// Format is the Parquet output format (format.Format, and
// format.Converter for schema widenings).
type Format struct{}

var (
	_ format.Format    = Format{}
	_ format.Converter = Format{}
)

// Name is "parquet".
func (Format) Name() string { return "parquet" }

// Compressions are snappy (the default), zstd, gzip and none.
func (Format) Compressions() []string { return []string{"snappy", "zstd", "gzip", "none"} }

// Ext is "parquet" whatever the compression: Parquet compresses pages
// inside the file.
func (Format) Ext(string) string { return "parquet" }

// SplitsColumns: a column chunk stands alone, so column groups of a row
// group are encoded by tasks of their own and assembled (Assemble).
func (Format) SplitsColumns() bool { return true }

// Positional is false: readers match Parquet columns by name.
func (Format) Positional() bool { return false }

// Hive is Hive's Parquet SerDe; a compression other than the default is
// named in the table's properties.
func (Format) Hive(compression string) format.HiveStorage {
	s := format.HiveStorage{SerDe: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
		InputFormat:  "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
		OutputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
		SerDeParams:  map[string]string{"serialization.format": "1"},
		Params:       map[string]string{"classification": "parquet"}}
	if c := compression; c != "" && c != "none" {
		s.Params["parquet.compression"] = strings.ToUpper(c)
	}
	return s
}

// OutputRatio is what the 1 GB benchmark measured (77 MB of Parquet from
// 570 MB of row records), rounded up so that a first build's files come
// out at or under the target size.
func (Format) OutputRatio(string) float64 { return 0.15 }

// typeOf is the Parquet type of a column type.
func typeOf(t column.Type) Type {
	switch t {
	case column.TypeBool:
		return Bool
	case column.TypeBigint:
		return Int64
	case column.TypeDouble:
		return Double
	case column.TypeLocalTime:
		return TimestampLocal
	case column.TypeUTCTime:
		return TimestampUTC
	}
	return String
}

func columnsOf(cols []column.Column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = Column{Name: c.Name, Type: typeOf(c.Type)}
	}
	return out
}

// optionsOf are the writer options of the job's files: its codec,
// and its time zone in the key-value metadata (what the local timestamp
// column's wall clock is in).
func optionsOf(o format.Options) (Options, error) {
	codec, err := Codec(o.Compression)
	if err != nil {
		return Options{}, err
	}
	return Options{Codec: codec, KeyValue: KeyValue(o)}, nil
}

// KeyValue is the key-value metadata of the job's files' footers: the
// time zone of the local timestamp column's wall clock.
func KeyValue(o format.Options) map[string]string {
	return map[string]string{"sluice.time_zone": o.TimeZone}
}

// Encode writes the rows as a Parquet file of one row group holding the
// columns [in.From, in.To) (Assemble puts it in its place).
func (Format) Encode(w io.Writer, o format.Options, in format.Fragment, m format.Rows) (int64, error) {
	cols := in.Columns[in.From:in.To]
	opts, err := optionsOf(o)
	if err != nil {
		return 0, err
	}
	total := int(in.Rows)
	vals := make([]*Values, len(cols))
	tsCol, utcCol := -1, -1
	for j, c := range cols {
		vals[j] = NewValues(typeOf(c.Type))
		count, size := total, 0
		if j < len(in.Values) {
			count, size = int(in.Values[j]), int(in.StringBytes[j])
		}
		switch c.Type {
		case column.TypeLocalTime:
			tsCol, count = j, total
		case column.TypeUTCTime:
			utcCol, count = j, total
		}
		vals[j].Grow(total, count, size)
	}
	rows := 0
	catchUp := func(v *Values) {
		if n := rows - v.Rows(); n > 0 {
			v.AppendNulls(n)
		}
	}
	for {
		row, err := m.Next()
		if err != nil {
			return 0, err
		}
		if row == nil {
			break
		}
		fr := intermediate.NewFields(row.Fields)
		for {
			c, kind, ok := fr.Next()
			if !ok {
				if err := fr.Err(); err != nil {
					return 0, err
				}
				break
			}
			j := c - in.From
			if j < 0 || j >= len(cols) {
				return 0, fmt.Errorf("field of column %d in a run of columns %d-%d: %w", c, in.From, in.To, intermediate.ErrCorrupt)
			}
			v := vals[j]
			catchUp(v)
			switch {
			case kind == intermediate.KindString && v.Type == String:
				v.AppendString(fr.Bytes())
			case kind == intermediate.KindInt && v.Type == Int64:
				v.AppendInt(fr.Int())
			case kind == intermediate.KindDouble && v.Type == Double:
				v.AppendDouble(fr.Double())
			case kind == intermediate.KindBool && v.Type == Bool:
				v.AppendBool(fr.Bool())
			default:
				return 0, fmt.Errorf("a %s value in column %s (%s): %w", intermediate.KindName(kind), cols[j].Name, cols[j].Type, intermediate.ErrCorrupt)
			}
		}
		if tsCol >= 0 {
			catchUp(vals[tsCol])
			vals[tsCol].AppendInt(row.US + row.Off*1_000_000)
		}
		if utcCol >= 0 {
			catchUp(vals[utcCol])
			vals[utcCol].AppendInt(row.US)
		}
		rows++
	}
	for _, v := range vals {
		catchUp(v)
	}
	pw := NewWriter(w, columnsOf(cols), opts)
	if err := pw.WriteRowGroup(vals); err != nil {
		return 0, err
	}
	return int64(rows), pw.Close()
}

// Assemble reads the fragments' footers and lays out the file: column
// chunks copied as they are, page indexes and footer anew.
func (Format) Assemble(ctx context.Context, r storage.Reader, o format.Options, blocks [][]format.FragmentRef) ([]storage.Section, error) {
	frags := make([][]*Fragment, len(blocks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, block := range blocks {
		frags[i] = make([]*Fragment, len(block))
		for j, f := range block {
			g.Go(func() (err error) {
				frags[i][j], err = ReadFragment(gctx, r, f.Key, f.Size)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	opts, err := optionsOf(o)
	if err != nil {
		return nil, err
	}
	return Assemble(frags, opts.KeyValue)
}
