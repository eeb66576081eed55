package transform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"sluice/pipeline/format/parquet"
	"sluice/pipeline/storage"
)

// FileColumns reads the footer of the Parquet file at key (size bytes) and
// returns its columns with their types, in file order, and which of them
// are dictionary-encoded.
func FileColumns(ctx context.Context, r storage.Reader, key string, size int64) ([]Column, []bool, error) {
	f, err := pq.OpenFile(storage.NewReaderAt(ctx, r, key), size, pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		return nil, nil, fmt.Errorf("read footer of %s: %w", key, err)
	}
	return fileColumns(f, key)
}

func fileColumns(f *pq.File, key string) ([]Column, []bool, error) {
	leaves := f.Schema().Columns()
	cols := make([]Column, len(leaves))
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
		cols[i] = Column{Name: path[0], Type: t}
	}
	if rgs := f.Metadata().RowGroups; len(rgs) > 0 {
		for i, c := range rgs[0].Columns {
			for _, e := range c.MetaData.Encoding {
				if e == format.RLEDictionary || e == format.PlainDictionary {
					dict[i] = true
				}
			}
		}
	}
	return cols, dict, nil
}

// leafType is the ColumnType of a column the reduce wrote.
func leafType(n pq.Node) (ColumnType, error) {
	switch n.Type().Kind() {
	case pq.Boolean:
		return TypeBool, nil
	case pq.Double:
		return TypeDouble, nil
	case pq.ByteArray:
		return TypeString, nil
	case pq.Int64:
		if lt := n.Type().LogicalType(); lt != nil {
			if ts, ok := lt.Value.(*format.TimestampType); ok {
				if ts.IsAdjustedToUTC {
					return TypeUTCTime, nil
				}
				return TypeLocalTime, nil
			}
		}
		return TypeBigint, nil
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
// order; row groups end at about opts.RowGroupBytes of values.
func ConvertFile(ctx context.Context, r storage.Reader, key string, size int64, spec Spec, cols []Column, w io.Writer, opts ReduceOptions) (FragmentStats, error) {
	var st FragmentStats
	fail := func(err error) (FragmentStats, error) { return st, fmt.Errorf("convert %s: %w", key, err) }
	f, err := pq.OpenFile(storage.NewReaderAt(ctx, r, key), size, pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		return fail(err)
	}
	old, _, err := fileColumns(f, key)
	if err != nil {
		return st, err
	}
	index := make(map[string]int, len(cols))
	for i, c := range cols {
		index[c.Name] = i
	}
	out := make([]Column, len(old))
	for i, c := range old {
		j, ok := index[c.Name]
		if !ok {
			return fail(fmt.Errorf("column %s is not in the table's schema", c.Name))
		}
		if want := cols[j].Type; want != c.Type && (c.Type == TypeLocalTime || c.Type == TypeUTCTime || want == TypeLocalTime || want == TypeUTCTime) {
			return fail(fmt.Errorf("column %s is %s, the table says %s", c.Name, c.Type, want))
		}
		out[i] = cols[j]
	}
	popts, err := parquetOptions(spec)
	if err != nil {
		return fail(err)
	}
	groupBytes := opts.RowGroupBytes
	if groupBytes <= 0 {
		groupBytes = DefaultRowGroupBytes
	}
	cw := &countingWriter{w: w}
	pw := parquet.NewWriter(cw, parquetColumns(out), popts)
	vals := make([]*parquet.Values, len(out))
	for i, c := range out {
		vals[i] = parquet.NewValues(parquetType(c.Type))
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
	rows := make([]pq.Row, 256)
	var held int64 // bytes of values held
	var text []byte
	for {
		n, err := rr.ReadRows(rows)
		for _, row := range rows[:n] {
			for _, v := range row {
				c := v.Column()
				dst := vals[c]
				if v.IsNull() {
					dst.AppendNull()
					continue
				}
				held += 8
				switch old[c].Type {
				case TypeString:
					b := v.ByteArray()
					dst.AppendString(b)
					held += int64(len(b))
				case TypeBool:
					if dst.Type == parquet.String {
						text = strconv.AppendBool(text[:0], v.Boolean())
						dst.AppendString(text)
					} else {
						dst.AppendBool(v.Boolean())
					}
				case TypeBigint:
					switch dst.Type {
					case parquet.String:
						text = strconv.AppendInt(text[:0], v.Int64(), 10)
						dst.AppendString(text)
					case parquet.Double:
						dst.AppendDouble(float64(v.Int64()))
					default:
						dst.AppendInt(v.Int64())
					}
				case TypeDouble:
					if dst.Type == parquet.String {
						text = strconv.AppendFloat(text[:0], v.Double(), 'g', -1, 64)
						dst.AppendString(text)
					} else {
						dst.AppendDouble(v.Double())
					}
				default: // the timestamps
					dst.AppendInt(v.Int64())
				}
			}
			st.Rows++
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
	st.Bytes = cw.n
	return st, nil
}
