package transform

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
)

func parquetNode(t ColumnType) parquet.Node {
	switch t {
	case TypeBool:
		return parquet.Leaf(parquet.BooleanType)
	case TypeBigint:
		return parquet.Int(64)
	case TypeDouble:
		return parquet.Leaf(parquet.DoubleType)
	case TypeLocalTime:
		return parquet.TimestampAdjusted(parquet.Microsecond, false)
	case TypeUTCTime:
		return parquet.TimestampAdjusted(parquet.Microsecond, true)
	}
	return parquet.String()
}

// parquetCodec is the page codec. SNAPPY is parquet-go's, at S2's
// "better" snappy-compatible level: with dictionary pages it measured 6 %
// smaller files than the fastest level for 2-3 % of the job's time, and
// bytes are what Athena bills (docs/BENCHMARKS.md).
func parquetCodec(name string) compress.Codec {
	switch name {
	case "zstd":
		return &parquet.Zstd
	case "gzip":
		return &parquet.Gzip
	case "none":
		return &parquet.Uncompressed
	}
	return &parquet.Snappy
}

// parquetSchema builds the file schema: every column an optional leaf.
// Integers and timestamps are DELTA_BINARY_PACKED (smaller and faster than
// PLAIN, most of all for sorted timestamps); strings are RLE_DICTIONARY
// where dict says so (see dictionaryColumns) and parquet-go's
// DELTA_LENGTH_BYTE_ARRAY otherwise. parquet-go orders a Group's fields by
// name, which is also our column order; the check keeps the row building
// honest if that ever changes.
func parquetSchema(cols []Column, dict []bool) (*parquet.Schema, error) {
	g := parquet.Group{}
	for i, c := range cols {
		node := parquetNode(c.Type)
		switch {
		case i < len(dict) && dict[i]:
			node = parquet.Encoded(node, &parquet.RLEDictionary)
		case c.Type == TypeBigint || c.Type == TypeLocalTime || c.Type == TypeUTCTime:
			node = parquet.Encoded(node, &parquet.DeltaBinaryPacked)
		}
		g[c.Name] = parquet.Optional(node)
	}
	schema := parquet.NewSchema("event", g)
	paths := schema.Columns()
	if len(paths) != len(cols) {
		return nil, fmt.Errorf("schema has %d columns, want %d", len(paths), len(cols))
	}
	for i, p := range paths {
		if len(p) != 1 || p[0] != cols[i].Name {
			return nil, fmt.Errorf("schema column %d is %v, want %s", i, p, cols[i].Name)
		}
	}
	return schema, nil
}

// parquetBatch is the number of rows handed to each column writer at once.
// parquet-go cuts a page when a column's buffer is full after a write, so
// this number also decides where pages end: changing it changes the file.
const parquetBatch = 1024

// writeParquet writes the rows column by column: a batch of rows is decoded
// straight into one value slice per column and each slice goes to its
// column writer, which skips parquet-go's row-to-column shuffle. Encoded
// pages wait for their row group in files under opts.TempDir, not in
// memory, and a row group ends at the first batch boundary after its pages
// reach opts.RowGroupBytes.
func writeParquet(w io.Writer, spec Spec, pd *partitionData, next rowIter, opts ReduceOptions) error {
	schema, err := parquetSchema(pd.cols, pd.dict)
	if err != nil {
		return err
	}
	groupBytes := opts.RowGroupBytes
	if groupBytes <= 0 {
		groupBytes = DefaultRowGroupBytes
	}
	pages := &pageBufferPool{dir: opts.TempDir}
	defer pages.close()
	fw := &footerWriter{w: w}
	pw := parquet.NewWriter(fw, schema,
		parquet.Compression(parquetCodec(spec.Compression)),
		// Row groups are cut by size below, never by a row count.
		parquet.MaxRowsPerRowGroup(math.MaxInt64),
		parquet.KeyValueMetadata("sluice.time_zone", spec.TimeZone),
		parquet.ColumnPageBuffers(pages),
		parquet.WriteBufferSize(256<<10),
		// Min/max stay in the column chunk statistics and the column index;
		// repeating them in every page header made parquet-go compute each
		// page's bounds twice (a tenth of the reduce on string columns).
		parquet.DataPageStatistics(false),
		// A column the sample judged repetitive that turns out not to be
		// falls back to plain pages once its dictionary holds this much.
		parquet.DictionaryMaxBytes(maxDictionaryBytes),
	)
	b, err := pd.newColumnBatch()
	if err != nil {
		return err
	}
	// pw.Size is the bytes written plus those buffered for the row group
	// (pages, page buffers, dictionaries): an upper bound of the group's
	// encoded size.
	var groupStart int64
	flush := func() error {
		cws := pw.ColumnWriters()
		for c := range b.cols {
			if _, err := cws[c].WriteRowValues(b.column(c)); err != nil {
				return err
			}
		}
		b.reset()
		if pw.Size()-groupStart >= groupBytes {
			if err := pw.Flush(); err != nil {
				return err
			}
			groupStart = pw.Size()
		}
		return nil
	}
	for {
		r, err := next()
		if err != nil {
			return err
		}
		if r == nil {
			break
		}
		if err := pd.decodeParquet(r, b); err != nil {
			return err
		}
		if b.rows == parquetBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if b.rows > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	if err := pw.Flush(); err != nil {
		return err
	}
	fw.holdFooter()
	if err := pw.Close(); err != nil {
		return err
	}
	if err := fw.finish(); err != nil {
		return err
	}
	return pages.err
}

// columnBatch is a batch of rows as one parquet.Value slice per column.
// Cells are written in row order; the rows a column skipped are filled
// with its null value when the column is next written or handed out.
type columnBatch struct {
	cols []batchColumn
	rows int    // rows in the batch
	buf  []byte // converted values (and copied strings) of the batch
}

// batchColumn is one column of a batch, with what setting a cell needs
// side by side.
type batchColumn struct {
	vals   []parquet.Value // parquetBatch long
	filled int             // rows [0, filled) are set
	tail   uint64          // the last word of the column's non-null values
	typ    ColumnType
	null   parquet.Value
}

// The last 8 bytes of a parquet.Value (parquet-go v0.32: ptr, u64, then
// kind, definition and repetition levels, column index) are the same for
// every non-null value of a column. Setting them as one word replaces a
// call to Value.Level per cell, which showed in profiles; newColumnBatch
// checks the layout against Level and refuses to write if it changed.
const valueTailOffset = 16

var _ [24 - unsafe.Sizeof(parquet.Value{})]struct{} // parquet.Value is 24 bytes
var _ [unsafe.Sizeof(parquet.Value{}) - 24]struct{}

func valueTail(v *parquet.Value) *uint64 {
	return (*uint64)(unsafe.Add(unsafe.Pointer(v), valueTailOffset))
}

func (pd *partitionData) newColumnBatch() (*columnBatch, error) {
	b := &columnBatch{cols: make([]batchColumn, len(pd.cols))}
	for c, col := range pd.cols {
		bc := &b.cols[c]
		bc.vals = make([]parquet.Value, parquetBatch)
		bc.typ = col.Type
		bc.null = parquet.Value{}.Level(0, 0, c)
		var sample parquet.Value
		switch col.Type {
		case TypeBool:
			sample = parquet.BooleanValue(true)
		case TypeBigint, TypeLocalTime, TypeUTCTime:
			sample = parquet.Int64Value(-42)
		case TypeDouble:
			sample = parquet.DoubleValue(0.5)
		default:
			sample = parquet.ByteArrayValue([]byte("sample"))
		}
		want := sample.Level(0, 1, c)
		bc.tail = *valueTail(&want)
		got := sample
		*valueTail(&got) = bc.tail
		if got != want || !parquet.Equal(got, want) || got.DefinitionLevel() != 1 || got.Column() != c {
			return nil, fmt.Errorf("parquet.Value layout is not the expected one (parquet-go upgraded?)")
		}
	}
	return b, nil
}

// set stores v, with the column's levels, as the current row of column c.
func (b *columnBatch) set(c int, v parquet.Value) {
	bc := &b.cols[c]
	i := b.rows
	if bc.filled < i {
		fillNulls(bc.vals[bc.filled:i], bc.null)
	}
	p := &bc.vals[i]
	*p = v
	*valueTail(p) = bc.tail
	bc.filled = i + 1
}

// setNull stores a null as the current row of column c.
func (b *columnBatch) setNull(c int) {
	bc := &b.cols[c]
	i := b.rows
	if bc.filled < i {
		fillNulls(bc.vals[bc.filled:i], bc.null)
	}
	bc.vals[i] = bc.null
	bc.filled = i + 1
}

func fillNulls(vals []parquet.Value, null parquet.Value) {
	for i := range vals {
		vals[i] = null
	}
}

// column returns the batch's values of column c.
func (b *columnBatch) column(c int) []parquet.Value {
	bc := &b.cols[c]
	if bc.filled < b.rows {
		fillNulls(bc.vals[bc.filled:b.rows], bc.null)
		bc.filled = b.rows
	}
	return bc.vals[:b.rows]
}

// reset empties the batch once its values have been written.
func (b *columnBatch) reset() {
	for c := range b.cols {
		bc := &b.cols[c]
		clear(bc.vals[:bc.filled]) // drop references into row data
		bc.filled = 0
	}
	b.rows = 0
	b.buf = b.buf[:0]
}

// decodeParquet adds a row to the batch. Converted values and, when
// pd.copyStrings is set, strings are appended to b.buf; values point into
// it and into the row's data, which must stay unchanged until the batch is
// written.
func (pd *partitionData) decodeParquet(r *rowRef, b *columnBatch) error {
	colMap := pd.colMaps[r.file]
	br := byteReader{b: r.fields}
	n := br.uvarint()
	buf := b.buf
	for j := uint64(0); j < n && br.err == nil; j++ {
		id := br.uvarint()
		kind := br.byte()
		if br.err != nil || id >= uint64(len(colMap)) {
			return errCorrupt
		}
		c := int(colMap[id])
		if c < 0 {
			br.skipField(kind)
			continue
		}
		typ := b.cols[c].typ
		var v parquet.Value
		switch kind {
		case kindNull:
			b.setNull(c)
			continue
		case kindBool:
			t := br.byte() != 0
			if typ == TypeString {
				s := len(buf)
				buf = strconv.AppendBool(buf, t)
				v = parquet.ByteArrayValue(buf[s:])
			} else {
				v = parquet.BooleanValue(t)
			}
		case kindInt:
			n := br.varint()
			switch typ {
			case TypeString:
				s := len(buf)
				buf = strconv.AppendInt(buf, n, 10)
				v = parquet.ByteArrayValue(buf[s:])
			case TypeDouble:
				v = parquet.DoubleValue(float64(n))
			default:
				v = parquet.Int64Value(n)
			}
		case kindDouble:
			f := math.Float64frombits(binary.LittleEndian.Uint64(br.bytes(8)))
			if typ == TypeString {
				s := len(buf)
				buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
				v = parquet.ByteArrayValue(buf[s:])
			} else {
				v = parquet.DoubleValue(f)
			}
		case kindString:
			s := br.bytes(br.uvarint())
			if pd.copyStrings {
				o := len(buf)
				buf = append(buf, s...)
				s = buf[o:]
			}
			v = parquet.ByteArrayValue(s)
		default:
			return errCorrupt
		}
		b.set(c, v)
	}
	b.buf = buf
	if br.err != nil {
		return br.err
	}
	if pd.tsCol >= 0 {
		b.set(pd.tsCol, parquet.Int64Value(r.us+r.off*1_000_000))
	}
	if pd.utcCol >= 0 {
		b.set(pd.utcCol, parquet.Int64Value(r.us))
	}
	b.rows++
	return nil
}
