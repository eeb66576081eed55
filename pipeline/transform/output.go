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

func writeParquet(w io.Writer, spec Spec, pd *partitionData, keep []int32, rowGroupRows int64) error {
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
	)
	const batch = 256
	ncol := len(pd.cols)
	vals := make([]fieldValue, ncol)
	slab := make([]parquet.Value, batch*ncol)
	rows := make([]parquet.Row, 0, batch)
	var buf []byte
	flush := func() error {
		if _, err := pw.WriteRows(rows); err != nil {
			return err
		}
		rows = rows[:0]
		buf = buf[:0]
		return nil
	}
	for _, k := range keep {
		if buf, err = pd.decodeRow(&pd.rows[k], vals, buf); err != nil {
			return err
		}
		row := parquet.Row(slab[len(rows)*ncol : (len(rows)+1)*ncol])
		for c, v := range vals {
			if v.null {
				row[c] = parquet.Value{}.Level(0, 0, c)
				continue
			}
			var pv parquet.Value
			switch pd.cols[c].typ {
			case typeString:
				pv = parquet.ByteArrayValue(v.b)
			case typeBool:
				pv = parquet.BooleanValue(v.t)
			case typeDouble:
				pv = parquet.DoubleValue(v.f)
			default:
				pv = parquet.Int64Value(v.i)
			}
			row[c] = pv.Level(0, 1, c)
		}
		rows = append(rows, row)
		if len(rows) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(rows) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return pw.Close()
}

// CSV renders timestamps as text a reader can parse without a zone: the
// local wall clock as "2006-01-02 15:04:05.000000", the instant with a Z.
const (
	csvLocalLayout = "2006-01-02 15:04:05.000000"
	csvUTCLayout   = "2006-01-02 15:04:05.000000Z"
)

func writeCSV(w io.Writer, spec Spec, pd *partitionData, keep []int32) error {
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
	var err error
	for _, k := range keep {
		buf = buf[:0]
		if buf, err = pd.decodeRow(&pd.rows[k], vals, buf); err != nil {
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
