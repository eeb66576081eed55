package transform

import (
	"fmt"
	"maps"
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

// ColumnPlan is how one run names and types its output columns. It is
// decided once, over the manifests of every shard, so that all files of the
// run agree.
type ColumnPlan struct {
	// Names maps each source path to its column name (see resolveNames).
	Names map[string]string `json:"names"`
	// Types is each column's type, the generated timestamps included.
	Types      map[string]ColumnType `json:"types"`
	Collisions []Collision           `json:"collisions,omitempty"`
	timestamp  string
}

// PlanColumns names and types the columns of a run from its shards.
func PlanColumns(spec Spec, mans []*ShardManifest) ColumnPlan {
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
	ts := columnName(spec.TimestampField)
	names, coll := resolveNames(slices.Collect(maps.Keys(masks)), []string{ts, ts + "_utc"})
	p := ColumnPlan{Names: names, Types: map[string]ColumnType{ts: TypeLocalTime, ts + "_utc": TypeUTCTime}, Collisions: coll, timestamp: ts}
	for path, n := range names {
		p.Types[n] = widen(masks[path])
	}
	return p
}

// DateColumns lists the columns of date d's files, sorted by name: for
// Parquet, which readers match by name, the columns that occur on d; for
// CSV, which readers match by position, every column of the run.
func (p ColumnPlan) DateColumns(spec Spec, mans []*ShardManifest, d civil.Date) []Column {
	use := map[string]bool{p.timestamp: true, p.timestamp + "_utc": true}
	for _, m := range mans {
		for _, df := range m.Dates {
			if df.Date != d && spec.Format != "csv" {
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
