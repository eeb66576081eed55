package transform

import (
	"encoding/binary"
	"io"

	"sluice/pipeline/intermediate"
)

// Field kinds of the intermediate format (see pipeline/intermediate), also
// used as bits of a column's type mask.
const (
	kindNull   = intermediate.KindNull
	kindBool   = intermediate.KindBool
	kindInt    = intermediate.KindInt
	kindDouble = intermediate.KindDouble
	kindString = intermediate.KindString
)

const (
	maskNull   uint8 = 1 << kindNull
	maskBool   uint8 = 1 << kindBool
	maskInt    uint8 = 1 << kindInt
	maskDouble uint8 = 1 << kindDouble
	maskString uint8 = 1 << kindString
)

var errCorrupt = intermediate.ErrCorrupt

// byteReader decodes the primitives of the intermediate format from a
// fully loaded buffer. Errors are sticky: after a short read every call
// returns zero and err is set.
type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) byte() byte {
	if len(r.b) == 0 {
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *byteReader) uvarint() uint64 {
	if len(r.b) > 0 && r.b[0] < 0x80 { // one byte: most ids and lengths
		v := uint64(r.b[0])
		r.b = r.b[1:]
		return v
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.err = io.ErrUnexpectedEOF
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// skipField moves past the payload of a field of the given kind.
func (r *byteReader) skipField(kind byte) {
	switch kind {
	case kindNull:
	case kindBool:
		r.byte()
	case kindInt:
		r.varint()
	case kindDouble:
		r.bytes(8)
	case kindString:
		r.bytes(r.uvarint())
	default:
		r.err = errCorrupt
		r.b = nil
	}
}
