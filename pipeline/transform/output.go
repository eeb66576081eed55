package transform

import (
	"bufio"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
)

const defaultRowGroupRows = 500_000

// fieldValue is one decoded field converted to its column's output type.
type fieldValue struct {
	null bool
	b    []byte // typeString
	i    int64  // typeInt, and micros for the time types
	f    float64
	t    bool
}

// decodeRow fills vals (one per output column, reset to null first) from a
// row. String conversions of wider-typed values are appended to buf, which
// is returned; values may point into it and into the loaded intermediate.
func (pd *partitionData) decodeRow(r *rowRef, vals []fieldValue, buf []byte) ([]byte, error) {
	for i := range vals {
		vals[i] = fieldValue{null: true}
	}
	colMap := pd.colMaps[r.file]
	br := byteReader{b: r.fields}
	n := br.uvarint()
	for j := uint64(0); j < n && br.err == nil; j++ {
		id := br.uvarint()
		kind := br.byte()
		if br.err != nil || id >= uint64(len(colMap)) {
			return buf, errCorrupt
		}
		c := colMap[id]
		if c < 0 {
			br.skipField(kind)
			continue
		}
		v := &vals[c]
		typ := pd.cols[c].typ
		*v = fieldValue{}
		switch kind {
		case kindNull:
			v.null = true
		case kindBool:
			t := br.byte() != 0
			if typ == typeString {
				s := len(buf)
				buf = strconv.AppendBool(buf, t)
				v.b = buf[s:]
			} else {
				v.t = t
			}
		case kindInt:
			n := br.varint()
			switch typ {
			case typeString:
				s := len(buf)
				buf = strconv.AppendInt(buf, n, 10)
				v.b = buf[s:]
			case typeDouble:
				v.f = float64(n)
			default:
				v.i = n
			}
		case kindDouble:
			f := math.Float64frombits(binary.LittleEndian.Uint64(br.bytes(8)))
			if typ == typeString {
				s := len(buf)
				buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
				v.b = buf[s:]
			} else {
				v.f = f
			}
		case kindString:
			v.b = br.bytes(br.uvarint())
		default:
			return buf, errCorrupt
		}
	}
	if br.err != nil {
		return buf, br.err
	}
	if pd.tsCol >= 0 {
		vals[pd.tsCol] = fieldValue{i: r.us + r.off*1_000_000}
	}
	if pd.utcCol >= 0 {
		vals[pd.utcCol] = fieldValue{i: r.us}
	}
	return buf, nil
}

func parquetNode(t colType) parquet.Node {
	switch t {
	case typeBool:
		return parquet.Leaf(parquet.BooleanType)
	case typeInt:
		return parquet.Int(64)
	case typeDouble:
		return parquet.Leaf(parquet.DoubleType)
	case typeLocalTime:
		return parquet.TimestampAdjusted(parquet.Microsecond, false)
	case typeUTCTime:
		return parquet.TimestampAdjusted(parquet.Microsecond, true)
	}
	return parquet.String()
}

// fastSnappy is the SNAPPY codec at S2's fastest snappy-compatible level;
// parquet-go's own uses the slower "better" level, which costs a quarter of
// the reduce for a few percent of size.
type fastSnappy struct{ snappy.Codec }

func (*fastSnappy) Encode(dst, src []byte) ([]byte, error) {
	n := s2.MaxEncodedLen(len(src))
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	return s2.EncodeSnappy(dst[:n], src), nil
}

func parquetCodec(name string) compress.Codec {
	switch name {
	case "zstd":
		return &parquet.Zstd
	case "gzip":
		return &parquet.Gzip
	case "none":
		return &parquet.Uncompressed
	}
	return &fastSnappy{}
}

// parquetSchema builds the file schema: every column an optional leaf.
// parquet-go orders a Group's fields by name, which is also our column
// order; the check keeps the row building honest if that ever changes.
func parquetSchema(cols []outCol) (*parquet.Schema, error) {
	g := parquet.Group{}
	for _, c := range cols {
		g[c.name] = parquet.Optional(parquetNode(c.typ))
	}
	schema := parquet.NewSchema("event", g)
	paths := schema.Columns()
	if len(paths) != len(cols) {
		return nil, fmt.Errorf("schema has %d columns, want %d", len(paths), len(cols))
	}
	for i, p := range paths {
		if len(p) != 1 || p[0] != cols[i].name {
			return nil, fmt.Errorf("schema column %d is %v, want %s", i, p, cols[i].name)
		}
	}
	return schema, nil
}

// rowIter yields the rows of a partition in output order; it returns nil at
// the end. A row is valid until the next call.
type rowIter func() (*rowRef, error)

// writeParquet writes the rows column by column: a batch of rows is decoded
// straight into one value slice per column and each slice goes to its
// column writer, which skips parquet-go's row-to-column shuffle. Row groups
// are cut every rowGroupRows rows. Encoded pages wait for their row group in
// files under tempDir, not in memory.
func writeParquet(w io.Writer, spec Spec, pd *partitionData, next rowIter, rowGroupRows int64, tempDir string) error {
	schema, err := parquetSchema(pd.cols)
	if err != nil {
		return err
	}
	if rowGroupRows <= 0 {
		rowGroupRows = defaultRowGroupRows
	}
	pw := parquet.NewWriter(w, schema,
		parquet.Compression(parquetCodec(spec.Compression)),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.KeyValueMetadata("sluice.time_zone", spec.TimeZone),
		parquet.ColumnPageBuffers(parquet.NewFileBufferPool(tempDir, "sluice-pages-*")),
		// Min/max stay in the column chunk statistics and the column index;
		// repeating them in every page header made parquet-go compute each
		// page's bounds twice (a tenth of the reduce on string columns).
		parquet.DataPageStatistics(false),
	)
	const batch = 1024
	ncol := len(pd.cols)
	nulls := make([]parquet.Value, ncol)
	vals := make([][]parquet.Value, ncol)
	for c := range vals {
		nulls[c] = parquet.Value{}.Level(0, 0, c)
		vals[c] = make([]parquet.Value, 0, batch)
	}
	var buf []byte
	var inBatch int
	var inGroup int64
	flush := func() error {
		cws := pw.ColumnWriters()
		for c := range vals {
			if _, err := cws[c].WriteRowValues(vals[c]); err != nil {
				return err
			}
			clear(vals[c])
			vals[c] = vals[c][:0]
		}
		buf = buf[:0]
		inBatch = 0
		if inGroup >= rowGroupRows {
			inGroup = 0
			return pw.Flush()
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
		for c := range vals {
			vals[c] = append(vals[c], nulls[c])
		}
		if buf, err = pd.decodeParquet(r, vals, inBatch, buf); err != nil {
			return err
		}
		inBatch++
		inGroup++
		if inBatch == batch || inGroup >= rowGroupRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if inBatch > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return pw.Close()
}

// decodeParquet sets row i of the per-column value slices (already null)
// from a row. Converted values and, when pd.copyStrings is set, strings are
// appended to buf, which is returned; values point into it and into the
// row's data, which must stay unchanged until the batch is written.
func (pd *partitionData) decodeParquet(r *rowRef, vals [][]parquet.Value, i int, buf []byte) ([]byte, error) {
	colMap := pd.colMaps[r.file]
	br := byteReader{b: r.fields}
	n := br.uvarint()
	for j := uint64(0); j < n && br.err == nil; j++ {
		id := br.uvarint()
		kind := br.byte()
		if br.err != nil || id >= uint64(len(colMap)) {
			return buf, errCorrupt
		}
		c := colMap[id]
		if c < 0 {
			br.skipField(kind)
			continue
		}
		typ := pd.cols[c].typ
		var v parquet.Value
		switch kind {
		case kindNull:
			vals[c][i] = parquet.Value{}.Level(0, 0, int(c))
			continue
		case kindBool:
			t := br.byte() != 0
			if typ == typeString {
				s := len(buf)
				buf = strconv.AppendBool(buf, t)
				v = parquet.ByteArrayValue(buf[s:])
			} else {
				v = parquet.BooleanValue(t)
			}
		case kindInt:
			n := br.varint()
			switch typ {
			case typeString:
				s := len(buf)
				buf = strconv.AppendInt(buf, n, 10)
				v = parquet.ByteArrayValue(buf[s:])
			case typeDouble:
				v = parquet.DoubleValue(float64(n))
			default:
				v = parquet.Int64Value(n)
			}
		case kindDouble:
			f := math.Float64frombits(binary.LittleEndian.Uint64(br.bytes(8)))
			if typ == typeString {
				s := len(buf)
				buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
				v = parquet.ByteArrayValue(buf[s:])
			} else {
				v = parquet.DoubleValue(f)
			}
		case kindString:
			b := br.bytes(br.uvarint())
			if pd.copyStrings {
				s := len(buf)
				buf = append(buf, b...)
				b = buf[s:]
			}
			v = parquet.ByteArrayValue(b)
		default:
			return buf, errCorrupt
		}
		vals[c][i] = v.Level(0, 1, int(c))
	}
	if br.err != nil {
		return buf, br.err
	}
	if pd.tsCol >= 0 {
		vals[pd.tsCol][i] = parquet.Int64Value(r.us+r.off*1_000_000).Level(0, 1, pd.tsCol)
	}
	if pd.utcCol >= 0 {
		vals[pd.utcCol][i] = parquet.Int64Value(r.us).Level(0, 1, pd.utcCol)
	}
	return buf, nil
}

// CSV renders timestamps as text a reader can parse without a zone: the
// local wall clock as "2006-01-02 15:04:05.000000", the instant with a Z.
const (
	csvLocalLayout = "2006-01-02 15:04:05.000000"
	csvUTCLayout   = "2006-01-02 15:04:05.000000Z"
)

func writeCSV(w io.Writer, spec Spec, pd *partitionData, next rowIter) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var gz *gzip.Writer
	var dst io.Writer = bw
	if spec.Compression == "gzip" {
		gz = gzip.NewWriter(bw)
		dst = gz
	}
	cw := csv.NewWriter(dst)
	ncol := len(pd.cols)
	rec := make([]string, ncol)
	for i, c := range pd.cols {
		rec[i] = c.name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	vals := make([]fieldValue, ncol)
	var buf []byte
	for {
		r, err := next()
		if err != nil {
			return err
		}
		if r == nil {
			break
		}
		buf = buf[:0]
		if buf, err = pd.decodeRow(r, vals, buf); err != nil {
			return err
		}
		for c, v := range vals {
			if v.null {
				rec[c] = ""
				continue
			}
			s := len(buf)
			switch pd.cols[c].typ {
			case typeString:
				rec[c] = unsafe.String(unsafe.SliceData(v.b), len(v.b))
				continue
			case typeBool:
				buf = strconv.AppendBool(buf, v.t)
			case typeInt:
				buf = strconv.AppendInt(buf, v.i, 10)
			case typeDouble:
				buf = strconv.AppendFloat(buf, v.f, 'g', -1, 64)
			case typeLocalTime:
				buf = time.UnixMicro(v.i).UTC().AppendFormat(buf, csvLocalLayout)
			case typeUTCTime:
				buf = time.UnixMicro(v.i).UTC().AppendFormat(buf, csvUTCLayout)
			}
			b := buf[s:]
			rec[c] = unsafe.String(unsafe.SliceData(b), len(b))
		}
		// csv.Writer copies the strings before Write returns, so rec may
		// point into buffers that the next row reuses.
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}
