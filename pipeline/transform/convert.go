package transform

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"sluice/pipeline/storage"
)

// FileColumns reads the footer of the Parquet file at key (size bytes) and
// returns its columns with their types, in file order, and which of them
// are dictionary-encoded.
func FileColumns(ctx context.Context, r storage.Reader, key string, size int64) ([]Column, []bool, error) {
	f, err := parquet.OpenFile(storage.NewReaderAt(ctx, r, key), size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, nil, fmt.Errorf("read footer of %s: %w", key, err)
	}
	return fileColumns(f, key)
}

func fileColumns(f *parquet.File, key string) ([]Column, []bool, error) {
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
func leafType(n parquet.Node) (ColumnType, error) {
	switch n.Type().Kind() {
	case parquet.Boolean:
		return TypeBool, nil
	case parquet.Double:
		return TypeDouble, nil
	case parquet.ByteArray:
		return TypeString, nil
	case parquet.Int64:
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
// the rows read back as a rebuild would have written them; their order,
// and each column's dictionary encoding, stay.
func ConvertFile(ctx context.Context, r storage.Reader, key string, size int64, spec Spec, cols []Column, w io.Writer, opts ReduceOptions) (BucketStats, error) {
	var st BucketStats
	f, err := parquet.OpenFile(storage.NewReaderAt(ctx, r, key), size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return st, fmt.Errorf("convert %s: %w", key, err)
	}
	old, oldDict, err := fileColumns(f, key)
	if err != nil {
		return st, err
	}
	index := make(map[string]int, len(cols))
	for i, c := range cols {
		index[c.Name] = i
	}
	var out []Column
	var dict []bool
	colMap := make([]int32, len(old)) // old leaf -> index of out
	localCol, utcCol := -1, -1
	for i, c := range old {
		j, ok := index[c.Name]
		if !ok {
			return st, fmt.Errorf("convert %s: column %s is not in the table's schema", key, c.Name)
		}
		if want := cols[j].Type; want != c.Type && (c.Type == TypeLocalTime || c.Type == TypeUTCTime || want == TypeLocalTime || want == TypeUTCTime) {
			return st, fmt.Errorf("convert %s: column %s is %s, the table says %s", key, c.Name, c.Type, want)
		}
		colMap[i] = int32(len(out))
		out = append(out, cols[j])
		dict = append(dict, oldDict[i])
		switch c.Type {
		case TypeLocalTime:
			localCol = i
		case TypeUTCTime:
			utcCol = i
		}
	}
	if localCol < 0 || utcCol < 0 {
		return st, fmt.Errorf("convert %s: the file has no timestamp columns", key)
	}
	// Rows are decoded from one reused buffer: copy their strings.
	pd := &partitionData{cols: out, tsCol: -1, utcCol: -1, colMaps: [][]int32{colMap}, dict: dict, copyStrings: true}
	for i, c := range out {
		switch c.Type {
		case TypeLocalTime:
			pd.tsCol = i
		case TypeUTCTime:
			pd.utcCol = i
		}
	}
	rr := parquet.NewReader(f)
	defer rr.Close()
	rows := make([]parquet.Row, 256)
	var buffered []parquet.Row
	var cur rowRef
	next := func() (*rowRef, error) {
		if len(buffered) == 0 {
			n, err := rr.ReadRows(rows)
			if n == 0 {
				if err == nil || errors.Is(err, io.EOF) {
					return nil, nil
				}
				return nil, fmt.Errorf("convert %s: %w", key, err)
			}
			buffered = rows[:n]
		}
		row := buffered[0]
		buffered = buffered[1:]
		st.Rows++
		cur = rowRef{fields: encodeFields(cur.fields[:0], row, old)}
		for _, v := range row {
			switch v.Column() {
			case localCol:
				cur.off = v.Int64()
			case utcCol:
				cur.us = v.Int64()
			}
		}
		cur.off = (cur.off - cur.us) / 1_000_000
		return &cur, nil
	}
	cw := &countingWriter{w: w}
	if err := writeParquet(cw, spec, pd, next, opts); err != nil {
		return st, fmt.Errorf("convert %s: %w", key, err)
	}
	st.Bytes = cw.n
	return st, nil
}

// encodeFields appends a Parquet row's non-null values to dst as the
// fields of a row record (pipeline/intermediate), the file's leaf index as
// column id; the timestamp columns are carried by the rowRef instead.
func encodeFields(dst []byte, row parquet.Row, cols []Column) []byte {
	n := 0
	for _, v := range row {
		if !v.IsNull() && cols[v.Column()].Type != TypeLocalTime && cols[v.Column()].Type != TypeUTCTime {
			n++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, v := range row {
		c := v.Column()
		if v.IsNull() {
			continue
		}
		switch cols[c].Type {
		case TypeBool:
			b := byte(0)
			if v.Boolean() {
				b = 1
			}
			dst = append(binary.AppendUvarint(dst, uint64(c)), kindBool, b)
		case TypeBigint:
			dst = binary.AppendVarint(append(binary.AppendUvarint(dst, uint64(c)), kindInt), v.Int64())
		case TypeDouble:
			dst = binary.LittleEndian.AppendUint64(append(binary.AppendUvarint(dst, uint64(c)), kindDouble), math.Float64bits(v.Double()))
		case TypeString:
			b := v.ByteArray()
			dst = append(binary.AppendUvarint(append(binary.AppendUvarint(dst, uint64(c)), kindString), uint64(len(b))), b...)
		}
	}
	return dst
}
