package column

import (
	"fmt"
	"slices"
	"strings"

	"sluice/pipeline/intermediate"
)

// Type is the type of an output column.
type Type uint8

// Output column types. The names are what the job summary, the catalog and
// the Athena DDL call them.
const (
	TypeString    Type = iota
	TypeBool           // boolean
	TypeBigint         // 64-bit integer
	TypeDouble         // 64-bit float
	TypeLocalTime      // the event time as wall clock in the job's zone (TIMESTAMP, not adjusted to UTC)
	TypeUTCTime        // the event's instant (TIMESTAMP adjusted to UTC)
)

var typeNames = [...]string{"string", "boolean", "bigint", "double", "timestamp_local", "timestamp_utc"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", t)
}

// MarshalText writes the type's name.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a type's name.
func (t *Type) UnmarshalText(b []byte) error {
	i := slices.Index(typeNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("unknown column type %q", b)
	}
	*t = Type(i)
	return nil
}

// Widen picks the output type of a column from every kind it held:
// bigint -> double -> string, bool mixed with a number -> string, and a
// column that only ever held null is a string.
func Widen(mask uint8) Type {
	m := mask &^ MaskNull
	switch {
	case m&MaskString != 0, m&MaskBool != 0 && m&(MaskInt|MaskDouble) != 0:
		return TypeString
	case m&MaskDouble != 0:
		return TypeDouble
	case m&MaskInt != 0:
		return TypeBigint
	case m&MaskBool != 0:
		return TypeBool
	}
	return TypeString
}

// Column is one output column.
type Column struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Plan is how one run names and types its output columns: the
// table's schema (pipeline/schema) as the reduce needs it, so that all
// files of the run, and of the table, agree.
type Plan struct {
	// Names maps each source path to its column name.
	Names map[string]string `json:"names"`
	// Types is each column's type, the generated timestamps included.
	Types map[string]Type `json:"types"`
	// Order is the table's column order (CSV files write every column in
	// this order).
	Order      []string    `json:"order"`
	Collisions []Collision `json:"collisions,omitempty"`
	timestamp  string
}

// NewPlan is the plan of a table whose events are placed by
// timestampField whose columns, in table order, are
// cols; names maps each source path to its column.
func NewPlan(timestampField string, names map[string]string, cols []Column, collisions []Collision) Plan {
	p := Plan{Names: names, Types: map[string]Type{}, Collisions: collisions, timestamp: Name(timestampField)}
	for _, c := range cols {
		p.Types[c.Name] = c.Type
		p.Order = append(p.Order, c.Name)
	}
	return p
}

// TimestampColumns are the names of the generated columns: the event's
// local wall-clock time and its instant.
func TimestampColumns(timestampField string) (local, utc string) {
	ts := Name(timestampField)
	return ts, ts + "_utc"
}

// TableColumns lists every column of the table, in table order.
func (p Plan) TableColumns() []Column {
	cols := make([]Column, len(p.Order))
	for i, n := range p.Order {
		cols[i] = Column{Name: n, Type: p.Types[n]}
	}
	return cols
}

// Type masks: the bit of each intermediate field kind
// (pipeline/intermediate) in the mask of the kinds a column held, which
// Widen turns into the column's type.
const (
	MaskNull   uint8 = 1 << intermediate.KindNull
	MaskBool   uint8 = 1 << intermediate.KindBool
	MaskInt    uint8 = 1 << intermediate.KindInt
	MaskDouble uint8 = 1 << intermediate.KindDouble
	MaskString uint8 = 1 << intermediate.KindString
)

// Timestamps are the names of the plan's generated columns (see
// TimestampColumns).
func (p Plan) Timestamps() (local, utc string) { return p.timestamp, p.timestamp + "_utc" }

// ParseType reads the declared type of a derived column: string,
// boolean (bool), bigint (long, int, integer) or double (float), in any
// case.
func ParseType(name string) (Type, bool) {
	switch strings.ToLower(name) {
	case "string":
		return TypeString, true
	case "boolean", "bool":
		return TypeBool, true
	case "bigint", "long", "int", "integer":
		return TypeBigint, true
	case "double", "float":
		return TypeDouble, true
	}
	return 0, false
}
