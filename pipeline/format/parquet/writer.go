package parquet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sluice/pipeline/iocount"

	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

const (
	magic = "PAR1"
	// CreatedBy names the writer in every file's footer.
	CreatedBy = "sluice (parquet-go encoders)"
	// formatVersion is the version of the Parquet format the files
	// follow (2: data pages v2, page indexes).
	formatVersion = 2
)

// Options configure a Writer.
type Options struct {
	// Codec compresses pages; nil is snappy.
	Codec compress.Codec
	// KeyValue is the footer's key-value metadata.
	KeyValue map[string]string
}

// Writer writes a Parquet file one row group at a time. Each row group is
// encoded as it is written, so the writer holds no more than the caller's
// Values.
type Writer struct {
	w       *iocount.Writer
	cols    []Column
	kv      map[string]string
	enc     encoder
	groups  []format.RowGroup
	colIdx  [][]format.ColumnIndex
	offIdx  [][]format.OffsetIndex
	metrics []ColumnMetrics
	err     error
}

// ColumnMetrics are what the writer knows of one column over the file.
type ColumnMetrics struct {
	Values int64 // rows, nulls included
	Nulls  int64
	Bytes  int64 // compressed, page headers included
	// Min and Max are the PLAIN encodings of the smallest and largest
	// value (nil when every value is null); strings whole, not truncated.
	Min, Max []byte
}

// NewWriter writes a file of columns cols to w.
func NewWriter(w io.Writer, cols []Column, opts Options) *Writer {
	codec := opts.Codec
	if codec == nil {
		codec, _ = Codec("snappy")
	}
	return &Writer{w: &iocount.Writer{W: w}, cols: cols, kv: opts.KeyValue, enc: encoder{codec: codec}, metrics: make([]ColumnMetrics, len(cols))}
}

// WriteRowGroup encodes one row group: vals[i] are the values of column
// i, all with the same number of rows. A row group of no rows writes
// nothing.
func (w *Writer) WriteRowGroup(vals []*Values) error {
	if w.err != nil {
		return w.err
	}
	w.err = w.writeRowGroup(vals)
	return w.err
}

func (w *Writer) writeRowGroup(vals []*Values) error {
	if len(vals) != len(w.cols) {
		return fmt.Errorf("parquet: %d columns of values for %d columns", len(vals), len(w.cols))
	}
	rows := 0
	if len(vals) > 0 {
		rows = vals[0].Rows()
	}
	for i, v := range vals {
		if v.Rows() != rows || v.Type != w.cols[i].Type {
			return fmt.Errorf("parquet: column %s: %d %s rows, want %d %s", w.cols[i].Name, v.Rows(), v.Type, rows, w.cols[i].Type)
		}
	}
	if rows == 0 {
		return nil
	}
	if w.w.N == 0 {
		if _, err := io.WriteString(w.w, magic); err != nil {
			return err
		}
	}
	rg := format.RowGroup{NumRows: int64(rows), FileOffset: w.w.N, Ordinal: int16(len(w.groups))}
	ci := make([]format.ColumnIndex, len(vals))
	oi := make([]format.OffsetIndex, len(vals))
	for i, v := range vals {
		ch, err := w.enc.encodeChunk(w.w, w.w.N, w.cols[i], v)
		if err != nil {
			return fmt.Errorf("parquet: column %s: %w", w.cols[i].Name, err)
		}
		rg.Columns = append(rg.Columns, ch.meta)
		rg.TotalByteSize += ch.meta.MetaData.TotalUncompressedSize
		rg.TotalCompressedSize += ch.meta.MetaData.TotalCompressedSize
		ci[i], oi[i] = ch.colIdx, ch.offIdx
		w.metrics[i].add(w.cols[i].Type, ch)
	}
	w.groups = append(w.groups, rg)
	w.colIdx = append(w.colIdx, ci)
	w.offIdx = append(w.offIdx, oi)
	return nil
}

func (m *ColumnMetrics) add(t Type, ch chunk) {
	md := ch.meta.MetaData
	m.Values += md.NumValues
	m.Nulls += md.Statistics.NullCount
	m.Bytes += md.TotalCompressedSize
	if ch.min != nil && (m.Min == nil || compareValues(t, ch.min, m.Min) < 0) {
		m.Min = ch.min
	}
	if ch.max != nil && (m.Max == nil || compareValues(t, ch.max, m.Max) > 0) {
		m.Max = ch.max
	}
}

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.w.N }

// Rows is the number of rows written.
func (w *Writer) Rows() int64 {
	var n int64
	for _, rg := range w.groups {
		n += rg.NumRows
	}
	return n
}

// Metrics are what the writer knows of each column, in column order.
func (w *Writer) Metrics() []ColumnMetrics { return w.metrics }

// Close writes the page index and the footer. A file with no row groups
// is a valid file of no rows.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.w.N == 0 {
		if _, err := io.WriteString(w.w, magic); err != nil {
			return err
		}
	}
	tail, err := fileTail(w.w.N, schemaElements(w.cols), w.groups, w.colIdx, w.offIdx, w.kv)
	if err != nil {
		return err
	}
	_, err = w.w.Write(tail)
	w.err = errors.New("parquet: writer is closed")
	return err
}

// fileTail encodes what follows the row groups of a file whose row groups
// end at offset end: the page index (every column index, then every
// offset index, as parquet-java lays them out) and the footer. It sets the
// column chunks' page index offsets.
func fileTail(end int64, schema []format.SchemaElement, groups []format.RowGroup, colIdx [][]format.ColumnIndex, offIdx [][]format.OffsetIndex, kv map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	enc := thrift.NewEncoder(new(thrift.CompactProtocol).NewWriter(&buf))
	for i := range groups {
		for j := range groups[i].Columns {
			c := &groups[i].Columns[j]
			c.ColumnIndexOffset = end + int64(buf.Len())
			if err := enc.Encode(&colIdx[i][j]); err != nil {
				return nil, fmt.Errorf("parquet: encode column index: %w", err)
			}
			c.ColumnIndexLength = int32(end + int64(buf.Len()) - c.ColumnIndexOffset)
		}
	}
	for i := range groups {
		for j := range groups[i].Columns {
			c := &groups[i].Columns[j]
			c.OffsetIndexOffset = end + int64(buf.Len())
			if err := enc.Encode(&offIdx[i][j]); err != nil {
				return nil, fmt.Errorf("parquet: encode offset index: %w", err)
			}
			c.OffsetIndexLength = int32(end + int64(buf.Len()) - c.OffsetIndexOffset)
		}
	}
	md := format.FileMetaData{Version: formatVersion, Schema: schema, RowGroups: groups, CreatedBy: CreatedBy}
	for _, rg := range groups {
		md.NumRows += rg.NumRows
	}
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		md.KeyValueMetadata = append(md.KeyValueMetadata, format.KeyValue{Key: k, Value: kv[k]})
	}
	for range len(schema) - 1 {
		md.ColumnOrders = append(md.ColumnOrders, format.ColumnOrder{Value: &format.TypeDefinedOrder{}})
	}
	start := buf.Len()
	if err := enc.Encode(&md); err != nil {
		return nil, fmt.Errorf("parquet: encode footer: %w", err)
	}
	b := binary.LittleEndian.AppendUint32(buf.Bytes(), uint32(buf.Len()-start))
	return append(b, magic...), nil
}
