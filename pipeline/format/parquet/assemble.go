package parquet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"sluice/pipeline/storage"
)

// ErrNotParquet reports a fragment that is not a Parquet file.
var ErrNotParquet = errors.New("not a Parquet file")

// ErrColumnsDiffer reports blocks of one file whose columns differ.
var ErrColumnsDiffer = errors.New("columns differ")

// Fragment is a Parquet file written to be part of another: its footer and
// page index, read by ReadFragment.
type Fragment struct {
	Key    string
	Size   int64
	meta   format.FileMetaData
	colIdx [][]format.ColumnIndex // per row group, per column
	offIdx [][]format.OffsetIndex
}

// Rows is the number of rows in the fragment.
func (f *Fragment) Rows() int64 { return f.meta.NumRows }

// ReadFragment reads the footer and page index of the Parquet file at key
// (size bytes): one ranged read of its tail.
func ReadFragment(ctx context.Context, r storage.Reader, key string, size int64) (*Fragment, error) {
	f := &Fragment{Key: key, Size: size}
	ra := storage.NewReaderAt(ctx, r, key)
	if size < 12 {
		return nil, fmt.Errorf("%s: %d bytes: %w", key, size, ErrNotParquet)
	}
	foot := make([]byte, 8)
	if _, err := ra.ReadAt(foot, size-8); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	n := int64(binary.LittleEndian.Uint32(foot))
	if string(foot[4:]) != magic || n > size-12 {
		return nil, fmt.Errorf("%s: no footer: %w", key, ErrNotParquet)
	}
	// The page index, when there is one, comes right before the footer;
	// read both at once once the footer says where the index starts.
	footer := make([]byte, n)
	if _, err := ra.ReadAt(footer, size-8-n); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), footer, &f.meta); err != nil {
		return nil, fmt.Errorf("%s: decode footer: %v: %w", key, err, ErrNotParquet)
	}
	start := size - 8 - n
	for _, rg := range f.meta.RowGroups {
		for _, c := range rg.Columns {
			if c.ColumnIndexLength > 0 {
				start = min(start, c.ColumnIndexOffset)
			}
			if c.OffsetIndexLength > 0 {
				start = min(start, c.OffsetIndexOffset)
			}
		}
	}
	index := make([]byte, size-8-n-start)
	if _, err := ra.ReadAt(index, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	slice := func(off int64, length int32) ([]byte, error) {
		if length <= 0 || off < start || off+int64(length) > start+int64(len(index)) {
			return nil, fmt.Errorf("%s: page index at %d+%d outside the file's tail: %w", key, off, length, ErrNotParquet)
		}
		return index[off-start : off-start+int64(length)], nil
	}
	for _, rg := range f.meta.RowGroups {
		ci := make([]format.ColumnIndex, len(rg.Columns))
		oi := make([]format.OffsetIndex, len(rg.Columns))
		for j, c := range rg.Columns {
			b, err := slice(c.ColumnIndexOffset, c.ColumnIndexLength)
			if err == nil {
				err = thrift.Unmarshal(new(thrift.CompactProtocol), b, &ci[j])
			}
			if err == nil {
				b, err = slice(c.OffsetIndexOffset, c.OffsetIndexLength)
			}
			if err == nil {
				err = thrift.Unmarshal(new(thrift.CompactProtocol), b, &oi[j])
			}
			if err != nil {
				return nil, fmt.Errorf("%s: page index of %v: %w", key, c.MetaData.PathInSchema, err)
			}
		}
		f.colIdx = append(f.colIdx, ci)
		f.offIdx = append(f.offIdx, oi)
	}
	return f, nil
}

// Assemble returns the sections (storage.Compose) of one file made of
// fragments. blocks are consecutive runs of the file's rows: the
// fragments of a block hold the same rows in the same row groups, each a
// range of the columns, in column order; the file has every block's row
// groups, in order, with the columns of its fragments side by side. Every
// block must give the same columns. Column chunks are copied as they are;
// the page indexes and the footer are written anew, with kv as the key-value
// metadata. Fragments written by a Writer assemble into the bytes one
// Writer gives for the same row groups.
func Assemble(blocks [][]*Fragment, kv map[string]string) ([]storage.Section, error) {
	var (
		schema   []format.SchemaElement
		groups   []format.RowGroup
		colIdx   [][]format.ColumnIndex
		offIdx   [][]format.OffsetIndex
		sections = []storage.Section{{Data: []byte(magic)}}
		pos      = int64(len(magic))
	)
	for b, block := range blocks {
		if len(block) == 0 {
			return nil, fmt.Errorf("parquet: block %d has no fragments", b)
		}
		sch := []format.SchemaElement{block[0].meta.Schema[0]}
		n := len(block[0].meta.RowGroups)
		for _, f := range block {
			if len(f.meta.Schema) == 0 || len(f.meta.RowGroups) != n || f.meta.NumRows != block[0].meta.NumRows {
				return nil, fmt.Errorf("parquet: fragment %s: %d row groups of %d rows, want %d of %d as %s", f.Key, len(f.meta.RowGroups), f.meta.NumRows, n, block[0].meta.NumRows, block[0].Key)
			}
			sch = append(sch, f.meta.Schema[1:]...)
		}
		sch[0].NumChildren.Set(int32(len(sch) - 1))
		if schema == nil {
			schema = sch
		} else if err := sameSchema(schema, sch); err != nil {
			return nil, fmt.Errorf("parquet: block %d (%s): %w", b, block[0].Key, err)
		}
		for g := range n {
			rg := format.RowGroup{NumRows: block[0].meta.RowGroups[g].NumRows, FileOffset: pos, Ordinal: int16(len(groups))}
			var ci []format.ColumnIndex
			var oi []format.OffsetIndex
			for _, f := range block {
				src := f.meta.RowGroups[g]
				if src.NumRows != rg.NumRows {
					return nil, fmt.Errorf("parquet: fragment %s: row group %d has %d rows, want %d", f.Key, g, src.NumRows, rg.NumRows)
				}
				for j, c := range src.Columns {
					md := c.MetaData
					from := md.DataPageOffset
					if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < from {
						from = md.DictionaryPageOffset
					}
					shift := pos - from
					c.FileOffset += shift
					c.MetaData.DataPageOffset += shift
					if md.DictionaryPageOffset > 0 {
						c.MetaData.DictionaryPageOffset += shift
					}
					c.ColumnIndexOffset, c.ColumnIndexLength, c.OffsetIndexOffset, c.OffsetIndexLength = 0, 0, 0, 0
					o := f.offIdx[g][j]
					o.PageLocations = append([]format.PageLocation(nil), o.PageLocations...)
					for k := range o.PageLocations {
						o.PageLocations[k].Offset += shift
					}
					rg.Columns = append(rg.Columns, c)
					rg.TotalByteSize += md.TotalUncompressedSize
					rg.TotalCompressedSize += md.TotalCompressedSize
					ci = append(ci, f.colIdx[g][j])
					oi = append(oi, o)
					sections = appendRange(sections, f.Key, from, md.TotalCompressedSize)
					pos += md.TotalCompressedSize
				}
			}
			groups = append(groups, rg)
			colIdx = append(colIdx, ci)
			offIdx = append(offIdx, oi)
		}
	}
	if schema == nil {
		schema = schemaElements(nil)
	}
	tail, err := fileTail(pos, schema, groups, colIdx, offIdx, kv)
	if err != nil {
		return nil, err
	}
	return append(sections, storage.Section{Data: tail}), nil
}

// appendRange adds n bytes of key from off, extending the last section
// when it ends where this one starts.
func appendRange(sections []storage.Section, key string, off, n int64) []storage.Section {
	if last := &sections[len(sections)-1]; last.Key == key && last.Offset+last.Length == off {
		last.Length += n
		return sections
	}
	return append(sections, storage.Section{Key: key, Offset: off, Length: n})
}

// sameSchema reports how two flattened schemas differ, if they do.
func sameSchema(a, b []format.SchemaElement) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d columns, want %d: %w", len(b)-1, len(a)-1, ErrColumnsDiffer)
	}
	for i := range a {
		x, y := a[i], b[i]
		xt, _ := x.Type.Get()
		yt, _ := y.Type.Get()
		if x.Name != y.Name || xt != yt || x.FieldID != y.FieldID || x.LogicalType.String() != y.LogicalType.String() {
			return fmt.Errorf("column %d is %s %s, want %s %s: %w", i, y.Name, &y.LogicalType, x.Name, &x.LogicalType, ErrColumnsDiffer)
		}
	}
	return nil
}

// Footer returns the footer of a file: its schema and row groups.
func (f *Fragment) Footer() *format.FileMetaData { return &f.meta }
