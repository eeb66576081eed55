package parquet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	pq "github.com/parquet-go/parquet-go"
	pqformat "github.com/parquet-go/parquet-go/format"

	"sluice/pipeline/column"
	"sluice/pipeline/format"
	"sluice/pipeline/storage"
)

// FileColumns reads the footer of the Parquet file at key (size bytes) and
// returns its columns with their types, in file order, and which of them
// are dictionary-encoded.
func (Format) FileColumns(ctx context.Context, r storage.Reader, key string, size int64) ([]column.Column, []bool, error) {
	f, err := pq.OpenFile(storage.NewReaderAt(ctx, r, key), size, pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		return nil, nil, fmt.Errorf("read footer of %s: %w", key, err)
	}
	return fileColumns(f, key)
}

func fileColumns(f *pq.File, key string) ([]column.Column, []bool, error) {
	leaves := f.Schema().Columns()
	cols := make([]column.Column, len(leaves))
	dict := make([]bool, len(leaves))
	for i, path := range leaves {
		leaf, ok := f.Schema().Lookup(path...)
		if !ok || len(path) != 1 {
			return nil, nil, fmt.Errorf("%s: column %v is not a top-level leaf", key, path)
		}
		t, err := leafType(leaf.Node)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: column %s: %w", key, path[0], err)
		}
		cols[i] = column.Column{Name: path[0], Type: t}
	}
	if rgs := f.Metadata().RowGroups; len(rgs) > 0 {
		for i, c := range rgs[0].Columns {
			for _, e := range c.MetaData.Encoding {
				if e == pqformat.RLEDictionary || e == pqformat.PlainDictionary { //nolint:staticcheck // files of older writers mark dictionaries PLAIN_DICTIONARY
					dict[i] = true
				}
			}
		}
	}
	return cols, dict, nil
}

// leafType is the column type of a column the reduce wrote.
func leafType(n pq.Node) (column.Type, error) {
	switch n.Type().Kind() {
	case pq.Boolean:
		return column.TypeBool, nil
	case pq.Double:
		return column.TypeDouble, nil
	case pq.ByteArray:
		return column.TypeString, nil
	case pq.Int64:
		if lt := n.Type().LogicalType(); lt != nil {
			if ts, ok := lt.Value.(*pqformat.TimestampType); ok {
				if ts.IsAdjustedToUTC {
					return column.TypeUTCTime, nil
				}
				return column.TypeLocalTime, nil
			}
		}
		return column.TypeBigint, nil
	}
	return 0, fmt.Errorf("type %s is not one Sluice writes", n.Type())
}

// ConvertFile rewrites a published Parquet file (size bytes at key in r)
// with the column types of cols, which name the file's columns (a column
// of cols the file lacks is left out; the schema only ever adds columns):
// what a schema widening does to the files already written. Values are
// converted exactly as the reduce converts a narrower value in a wider
// column (an integer in a double column, anything in a string column), so
// the rows read back as a rebuild would have written them, in the same
// order; row groups end at about groupBytes of values.
//
//nolint:gocognit // one loop over row groups and columns with a conversion per type pair; its branches are the conversion table
func (Format) ConvertFile(ctx context.Context, r storage.Reader, key string, size int64, o format.Options, cols []column.Column, w io.Writer, groupBytes int64) (int64, error) {
	var rows int64
	fail := func(err error) (int64, error) { return rows, fmt.Errorf("convert %s: %w", key, err) }
	f, err := pq.OpenFile(storage.NewReaderAt(ctx, r, key), size, pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		return fail(err)
	}
	old, _, err := fileColumns(f, key)
	if err != nil {
		return rows, err
	}
	index := make(map[string]int, len(cols))
	for i, c := range cols {
		index[c.Name] = i
	}
	out := make([]column.Column, len(old))
	for i, c := range old {
		j, ok := index[c.Name]
		if !ok {
			return fail(fmt.Errorf("column %s is not in the table's schema", c.Name))
		}
		if want := cols[j].Type; want != c.Type && (c.Type == column.TypeLocalTime || c.Type == column.TypeUTCTime || want == column.TypeLocalTime || want == column.TypeUTCTime) {
			return fail(fmt.Errorf("column %s is %s, the table says %s", c.Name, c.Type, want))
		}
		out[i] = cols[j]
	}
	popts, err := optionsOf(o)
	if err != nil {
		return fail(err)
	}
	pw := NewWriter(w, columnsOf(out), popts)
	vals := make([]*Values, len(out))
	for i, c := range out {
		vals[i] = NewValues(typeOf(c.Type))
	}
	flush := func() error {
		err := pw.WriteRowGroup(vals)
		for _, v := range vals {
			v.Reset()
		}
		return err
	}
	rr := pq.NewReader(f)
	defer rr.Close()
	buf := make([]pq.Row, 256)
	var held int64 // bytes of values held
	var text []byte
	for {
		n, err := rr.ReadRows(buf)
		for _, row := range buf[:n] {
			for _, v := range row {
				c := v.Column()
				dst := vals[c]
				if v.IsNull() {
					dst.AppendNull()
					continue
				}
				held += 8
				switch old[c].Type {
				case column.TypeString:
					b := v.ByteArray()
					dst.AppendString(b)
					held += int64(len(b))
				case column.TypeBool:
					if dst.Type == String {
						text = strconv.AppendBool(text[:0], v.Boolean())
						dst.AppendString(text)
					} else {
						dst.AppendBool(v.Boolean())
					}
				case column.TypeBigint:
					switch dst.Type {
					case String:
						text = strconv.AppendInt(text[:0], v.Int64(), 10)
						dst.AppendString(text)
					case Double:
						dst.AppendDouble(float64(v.Int64()))
					default:
						dst.AppendInt(v.Int64())
					}
				case column.TypeDouble:
					if dst.Type == String {
						text = strconv.AppendFloat(text[:0], v.Double(), 'g', -1, 64)
						dst.AppendString(text)
					} else {
						dst.AppendDouble(v.Double())
					}
				default: // the timestamps
					dst.AppendInt(v.Int64())
				}
			}
			rows++
		}
		if held >= groupBytes {
			if err := flush(); err != nil {
				return fail(err)
			}
			held = 0
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			break
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if err := pw.Close(); err != nil {
		return fail(err)
	}
	return rows, nil
}
