package parquet

import "slices"

// Values are one column's values of one row group, in row order: a
// definition level per row (1: the row has a value, 0: null) and the
// non-null values in the slice of the column's type. Append methods keep
// the two in step; a Values is reused across row groups with Reset.
type Values struct {
	Type Type
	Defs []byte
	// Ints holds Int64 and timestamp values (microseconds).
	Ints    []int64
	Doubles []float64
	Bools   []bool
	// Bytes holds String values end to end; value i is
	// Bytes[Offsets[i]:Offsets[i+1]] (Offsets starts with 0).
	Bytes   []byte
	Offsets []uint32
}

// NewValues returns empty values of type t.
func NewValues(t Type) *Values {
	v := &Values{Type: t}
	v.Reset()
	return v
}

// Reset empties v, keeping its memory.
func (v *Values) Reset() {
	v.Defs, v.Ints, v.Doubles, v.Bools, v.Bytes = v.Defs[:0], v.Ints[:0], v.Doubles[:0], v.Bools[:0], v.Bytes[:0]
	v.Offsets = append(v.Offsets[:0], 0)
}

// Rows is the number of rows appended.
func (v *Values) Rows() int { return len(v.Defs) }

// count is the number of non-null values.
func (v *Values) count() int {
	switch v.Type {
	case Bool:
		return len(v.Bools)
	case Double:
		return len(v.Doubles)
	case String:
		return len(v.Offsets) - 1
	}
	return len(v.Ints)
}

// AppendNull adds a row without a value.
func (v *Values) AppendNull() { v.Defs = append(v.Defs, 0) }

// AppendNulls adds n rows without a value.
func (v *Values) AppendNulls(n int) {
	for range n {
		v.Defs = append(v.Defs, 0)
	}
}

// AppendInt adds a row holding x (Int64 and timestamp columns).
func (v *Values) AppendInt(x int64) {
	v.Defs = append(v.Defs, 1)
	v.Ints = append(v.Ints, x)
}

// AppendDouble adds a row holding x (Double columns).
func (v *Values) AppendDouble(x float64) {
	v.Defs = append(v.Defs, 1)
	v.Doubles = append(v.Doubles, x)
}

// AppendBool adds a row holding x (Bool columns).
func (v *Values) AppendBool(x bool) {
	v.Defs = append(v.Defs, 1)
	v.Bools = append(v.Bools, x)
}

// AppendString adds a row holding a copy of b (String columns).
func (v *Values) AppendString(b []byte) {
	v.Defs = append(v.Defs, 1)
	v.Bytes = append(v.Bytes, b...)
	v.Offsets = append(v.Offsets, uint32(len(v.Bytes)))
}

// StringAt is the i-th non-null value of a String column.
func (v *Values) StringAt(i int) []byte { return v.Bytes[v.Offsets[i]:v.Offsets[i+1]] }

// Grow makes room for rows more rows holding values more values, of bytes
// more string bytes, so that appending them allocates nothing.
func (v *Values) Grow(rows, values, bytes int) {
	v.Defs = slices.Grow(v.Defs, rows)
	switch v.Type {
	case Bool:
		v.Bools = slices.Grow(v.Bools, values)
	case Double:
		v.Doubles = slices.Grow(v.Doubles, values)
	case String:
		v.Offsets = slices.Grow(v.Offsets, values)
		v.Bytes = slices.Grow(v.Bytes, bytes)
	default:
		v.Ints = slices.Grow(v.Ints, values)
	}
}
