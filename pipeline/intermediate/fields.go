package intermediate

import (
	"encoding/binary"
	"io"
	"math"
)

// Fields reads the fields of a record (uvarint n, then n fields of uvarint
// column id, kind byte, payload) from a fully loaded buffer: the one
// decoder of the format's fields, for the reduce, the encode and the
// file formats. Next returns a field's column and kind, then exactly one
// of Bool, Int, Double, DoubleBits, Bytes or Skip reads its payload.
// Errors are sticky: after a short or corrupt read every call returns
// zero, Next returns false, and Err is set.
type Fields struct {
	b   []byte
	n   uint64
	err error
}

// NewFields starts reading fields (a record's fields, starting with their
// count).
func NewFields(fields []byte) Fields {
	f := Fields{b: fields}
	f.n = f.uvarint()
	return f
}

// Next moves to the next field and returns its column id and kind, the
// reader then at its payload; ok is false at the end and on an error.
func (f *Fields) Next() (col int, kind byte, ok bool) {
	if f.n == 0 || f.err != nil {
		return 0, 0, false
	}
	f.n--
	col = int(f.uvarint())
	kind = f.byte()
	return col, kind, f.err == nil
}

// Err is the first error met, or nil.
func (f *Fields) Err() error { return f.err }

// Len is the number of bytes left: a caller measures a field's size by
// it before and after.
func (f *Fields) Len() int { return len(f.b) }

// Bool reads a KindBool payload.
func (f *Fields) Bool() bool { return f.byte() != 0 }

// Int reads a KindInt payload.
func (f *Fields) Int() int64 { return f.varint() }

// Double reads a KindDouble payload.
func (f *Fields) Double() float64 {
	b := f.bytes(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// DoubleBits reads a KindDouble payload as its 8 bytes (little endian), to
// copy it as it is.
func (f *Fields) DoubleBits() []byte { return f.bytes(8) }

// Bytes reads a KindString payload; the bytes alias the buffer.
func (f *Fields) Bytes() []byte { return f.bytes(f.uvarint()) }

// Skip moves past the payload of a field of the given kind.
func (f *Fields) Skip(kind byte) {
	switch kind {
	case KindNull:
	case KindBool:
		f.byte()
	case KindInt:
		f.varint()
	case KindDouble:
		f.bytes(8)
	case KindString:
		f.bytes(f.uvarint())
	default:
		f.err = ErrCorrupt
		f.b = nil
	}
}

func (f *Fields) byte() byte {
	if len(f.b) == 0 {
		f.err = io.ErrUnexpectedEOF
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *Fields) uvarint() uint64 {
	if len(f.b) > 0 && f.b[0] < 0x80 { // one byte: most ids and lengths
		v := uint64(f.b[0])
		f.b = f.b[1:]
		return v
	}
	v, n := binary.Uvarint(f.b)
	if n <= 0 {
		f.err = ErrCorrupt
		f.b = nil
		return 0
	}
	f.b = f.b[n:]
	return v
}

func (f *Fields) varint() int64 {
	v, n := binary.Varint(f.b)
	if n <= 0 {
		f.err = ErrCorrupt
		f.b = nil
		return 0
	}
	f.b = f.b[n:]
	return v
}

func (f *Fields) bytes(n uint64) []byte {
	if uint64(len(f.b)) < n {
		f.err = io.ErrUnexpectedEOF
		f.b = nil
		return nil
	}
	v := f.b[:n:n]
	f.b = f.b[n:]
	return v
}

var kindNames = [...]string{KindNull: "null", KindBool: "boolean", KindInt: "integer", KindDouble: "decimal number", KindString: "string"}

// KindName names a field kind in messages (quarantine details, errors).
func KindName(kind byte) string {
	if int(kind) < len(kindNames) {
		return kindNames[kind]
	}
	return "unknown kind"
}
