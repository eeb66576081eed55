package transform

import (
	"encoding/binary"
	"math"
	"strconv"
)

// fieldValue is one decoded field converted to its column's output type.
type fieldValue struct {
	null bool
	b    []byte // TypeString
	i    int64  // TypeBigint, and micros for the time types
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
		typ := pd.cols[c].Type
		*v = fieldValue{}
		switch kind {
		case kindNull:
			v.null = true
		case kindBool:
			t := br.byte() != 0
			if typ == TypeString {
				s := len(buf)
				buf = strconv.AppendBool(buf, t)
				v.b = buf[s:]
			} else {
				v.t = t
			}
		case kindInt:
			n := br.varint()
			switch typ {
			case TypeString:
				s := len(buf)
				buf = strconv.AppendInt(buf, n, 10)
				v.b = buf[s:]
			case TypeDouble:
				v.f = float64(n)
			default:
				v.i = n
			}
		case kindDouble:
			f := math.Float64frombits(binary.LittleEndian.Uint64(br.bytes(8)))
			if typ == TypeString {
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
