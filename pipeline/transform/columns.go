package transform

import (
	"fmt"
	"slices"
	"strings"

	"sluice/pipeline/civil"
)

// ColumnType is the type of an output column.
type ColumnType uint8

// Output column types. The names are what the job summary, the catalog and
// the Athena DDL call them.
const (
	TypeString    ColumnType = iota
	TypeBool                 // boolean
	TypeBigint               // 64-bit integer
	TypeDouble               // 64-bit float
	TypeLocalTime            // the event time as wall clock in the job's zone (TIMESTAMP, not adjusted to UTC)
	TypeUTCTime              // the event's instant (TIMESTAMP adjusted to UTC)
)

var typeNames = [...]string{"string", "boolean", "bigint", "double", "timestamp_local", "timestamp_utc"}

func (t ColumnType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("ColumnType(%d)", t)
}

// MarshalText writes the type's name.
func (t ColumnType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a type's name.
func (t *ColumnType) UnmarshalText(b []byte) error {
	i := slices.Index(typeNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("unknown column type %q", b)
	}
	*t = ColumnType(i)
	return nil
}

// widen picks the output type of a column from every kind it held:
// bigint -> double -> string, bool mixed with a number -> string, and a
// column that only ever held null is a string.
func widen(mask uint8) ColumnType {
	m := mask &^ maskNull
	switch {
	case m&maskString != 0, m&maskBool != 0 && m&(maskInt|maskDouble) != 0:
		return TypeString
	case m&maskDouble != 0:
		return TypeDouble
	case m&maskInt != 0:
		return TypeBigint
	case m&maskBool != 0:
		return TypeBool
	}
	return TypeString
}

// Column is one output column.
type Column struct {
	Name string     `json:"name"`
	Type ColumnType `json:"type"`
}

// ColumnPlan is how one run names and types its output columns: the
// table's schema (pipeline/schema) as the reduce needs it, so that all
// files of the run, and of the table, agree.
type ColumnPlan struct {
	// Names maps each source path to its column name.
	Names map[string]string `json:"names"`
	// Types is each column's type, the generated timestamps included.
	Types map[string]ColumnType `json:"types"`
	// Order is the table's column order (CSV files write every column in
	// this order).
	Order      []string    `json:"order"`
	Collisions []Collision `json:"collisions,omitempty"`
	timestamp  string
}

// NewColumnPlan is the plan of a table whose columns, in table order, are
// cols; names maps each source path to its column.
func NewColumnPlan(spec Spec, names map[string]string, cols []Column, collisions []Collision) ColumnPlan {
	p := ColumnPlan{Names: names, Types: map[string]ColumnType{}, Collisions: collisions, timestamp: columnName(spec.TimestampField)}
	for _, c := range cols {
		p.Types[c.Name] = c.Type
		p.Order = append(p.Order, c.Name)
	}
	return p
}

// TimestampColumns are the names of the generated columns: the event's
// local wall-clock time and its instant.
func TimestampColumns(spec Spec) (local, utc string) {
	ts := columnName(spec.TimestampField)
	return ts, ts + "_utc"
}

// RunTypes is the type each source path the run's shards saw needs: the
// widest kind of value it held (bigint -> double -> string, boolean with a
// number -> string, only nulls -> string), or its pinned type
// (Spec.Columns), whose values the map already checked.
func RunTypes(spec Spec, mans []*ShardManifest) map[string]ColumnType {
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
	out := make(map[string]ColumnType, len(masks))
	for path, mask := range masks {
		out[path] = widen(mask)
		if t, ok := spec.PinnedType(path); ok {
			out[path] = t
		}
	}
	return out
}

// TableColumns lists every column of the table, in table order.
func (p ColumnPlan) TableColumns() []Column {
	cols := make([]Column, len(p.Order))
	for i, n := range p.Order {
		cols[i] = Column{Name: n, Type: p.Types[n]}
	}
	return cols
}

// DateColumns lists the columns of date d's files: for Parquet, which
// readers match by name, the columns that occur on d, sorted by name; for
// CSV, which readers match by position, every column of the table, in
// table order.
func (p ColumnPlan) DateColumns(spec Spec, mans []*ShardManifest, d civil.Date) []Column {
	if spec.Format == "csv" {
		return p.TableColumns()
	}
	use := map[string]bool{p.timestamp: true, p.timestamp + "_utc": true}
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
	cols := make([]Column, 0, len(use))
	for n := range use {
		cols = append(cols, Column{Name: n, Type: p.Types[n]})
	}
	slices.SortFunc(cols, func(a, b Column) int { return strings.Compare(a.Name, b.Name) })
	return cols
}

// ColMap maps a shard's column ids to indexes of cols (-1: not written).
func (p ColumnPlan) ColMap(cols []Column, m *ShardManifest) []int32 {
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
const noPin ColumnType = 255

// maxExactDouble is the largest integer every smaller one of which a
// double holds exactly (2^53).
const maxExactDouble = 1 << 53

// kindNames name field kinds in quarantine details.
var kindNames = [...]string{kindNull: "null", kindBool: "boolean", kindInt: "integer", kindDouble: "decimal number", kindString: "string"}

// pinHolds reports whether a column pinned to t holds a field of kind
// exactly: anything as a string, integers as bigint, integers (up to 2^53,
// checked by the caller) and decimals as double, booleans as boolean, and
// null in any of them.
func pinHolds(t ColumnType, kind byte) bool {
	switch kind {
	case kindNull:
		return true
	case kindBool:
		return t == TypeBool || t == TypeString
	case kindInt:
		return t != TypeBool
	case kindDouble:
		return t == TypeDouble || t == TypeString
	}
	return t == TypeString
}

// pinOf is the pinned type of a source path, or noPin.
func (m *mapper) pinOf(path string) ColumnType {
	if t, ok := m.spec.Columns[path]; ok {
		return t
	}
	return noPin
}

// lastPin is the pinned type of the field just begun.
func (m *mapper) lastPin() ColumnType {
	return m.pins[m.rowCols[len(m.rowCols)-2]]
}
