package mapper

import (
	"slices"
	"strings"

	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/transform"
)

// RunTypes is the type each source path the run's shards saw needs: the
// widest kind of value it held (bigint -> double -> string, boolean with a
// number -> string, only nulls -> string), or its pinned type
// (transform.Spec.Columns), whose values the map already checked.
func RunTypes(spec transform.Spec, mans []*Manifest) map[string]column.Type {
	masks := map[string]uint8{}
	for _, m := range mans {
		for _, df := range m.Dates {
			for id, k := range df.Kinds {
				if k != 0 {
					masks[m.Paths[id]] |= k
				}
			}
		}
	}
	out := make(map[string]column.Type, len(masks))
	for path, mask := range masks {
		out[path] = column.Widen(mask)
		if t, ok := spec.PinnedType(path); ok {
			out[path] = t
		}
	}
	return out
}

// DateColumns lists the columns of date d's files: in a format whose
// readers match columns by name (Parquet), the columns that occur on d in
// the shards mans, the generated timestamps included, sorted by name; in
// one whose readers match them by position (CSV), every column of the
// table, in table order.
func DateColumns(spec transform.Spec, p column.Plan, mans []*Manifest, d civil.Date) []column.Column {
	if ff, err := spec.FileFormat(); err == nil && ff.Positional() {
		return p.TableColumns()
	}
	local, utc := p.Timestamps()
	use := map[string]bool{local: true, utc: true}
	for _, m := range mans {
		for _, df := range m.Dates {
			if df.Date != d {
				continue
			}
			for id, k := range df.Kinds {
				if k != 0 {
					use[p.Names[m.Paths[id]]] = true
				}
			}
		}
	}
	cols := make([]column.Column, 0, len(use))
	for n := range use {
		cols = append(cols, column.Column{Name: n, Type: p.Types[n]})
	}
	slices.SortFunc(cols, func(a, b column.Column) int { return strings.Compare(a.Name, b.Name) })
	return cols
}

// ColMap maps a shard's column ids to indexes of cols (-1: not written).
func ColMap(p column.Plan, cols []column.Column, m *Manifest) []int32 {
	index := make(map[string]int32, len(cols))
	for i, c := range cols {
		index[c.Name] = int32(i)
	}
	out := make([]int32, len(m.Paths))
	for id, path := range m.Paths {
		out[id] = -1
		if i, ok := index[p.Names[path]]; ok {
			out[id] = i
		}
	}
	return out
}

// noPin marks a column whose type the spec does not pin.
const noPin column.Type = 255

// maxExactDouble is the largest integer every smaller one of which a
// double holds exactly (2^53).
const maxExactDouble = 1 << 53

// pinHolds reports whether a column pinned to t holds a field of kind
// exactly: anything as a string, integers as bigint, integers (up to 2^53,
// checked by the caller) and decimals as double, booleans as boolean, and
// null in any of them.
func pinHolds(t column.Type, kind byte) bool {
	switch kind {
	case kindNull:
		return true
	case kindBool:
		return t == column.TypeBool || t == column.TypeString
	case kindInt:
		return t != column.TypeBool
	case kindDouble:
		return t == column.TypeDouble || t == column.TypeString
	}
	return t == column.TypeString
}

// pinOf is the pinned type of a source path, or noPin.
func (m *mapper) pinOf(path string) column.Type {
	if t, ok := m.spec.Columns[path]; ok {
		return t
	}
	return noPin
}

// lastPin is the pinned type of the field just begun.
func (m *mapper) lastPin() column.Type {
	return m.pins[m.rowCols[len(m.rowCols)-2]]
}
