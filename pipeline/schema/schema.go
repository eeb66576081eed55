// Package schema keeps the output table's schema across runs: one list of
// columns with their types, versioned, beside the table (under _sluice/
// in the output location, so it shares the table's durability and a
// reader ignores it, and owes nothing to Redis).
//
// Every run of the job writes with the table's schema, so that no file can
// disagree with the table Athena reads (HIVE_BAD_DATA,
// HIVE_PARTITION_SCHEMA_MISMATCH):
//
//   - a column keeps its name and type across runs; each source path keeps
//     the column it was first given;
//   - a field never seen before becomes a new column, appended at the end
//     (CSV readers match columns by position; older files simply lack the
//     trailing columns, which readers take as null);
//   - data that needs a wider type widens the column, bigint -> double ->
//     string, and boolean or number -> string: a new version, which the job
//     finishes by rewriting every published Parquet file that holds the
//     narrower type (see pipeline/job);
//   - a pinned type (the job's columns:) is the column's type whatever the
//     data says; values it cannot hold are quarantined by the map. Pinning
//     a column to a narrower type than the table has is refused.
package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"sluice/pipeline/column"
	"sluice/pipeline/transform"
)

// Column is one column of the table.
type Column struct {
	Name string      `json:"name"`
	Type column.Type `json:"type"`
	// Paths are the source paths written to the column (segments joined
	// with "."); none for the generated timestamp columns.
	Paths []string `json:"paths,omitempty"`
	// Since is the version that added the column.
	Since int `json:"since"`
	// Renamed marks a column named by the job's rename: when the rename
	// goes, its source paths go back to their own names.
	Renamed bool `json:"renamed,omitempty"`
}

// Schema is one version of the table's schema.
type Schema struct {
	Version int `json:"version"` // 0: the table has no schema yet
	// Columns are in table order: CSV files write them in this order.
	Columns []Column  `json:"columns"`
	RunID   string    `json:"run_id,omitempty"` // the run that made this version
	At      time.Time `json:"at"`
	// Changes are what this version changed from the one before.
	Changes Changes `json:"changes"`
	// Converted is the newest version whose widenings every published
	// file has been rewritten to (see pipeline/job): while it is below
	// Version, some file may still hold a narrower type.
	Converted int `json:"converted"`
}

// Changes are what one version changed.
type Changes struct {
	Added   []string   `json:"added,omitempty"`
	Widened []Widening `json:"widened,omitempty"`
	// Moved are source fields whose column changed (a rename in the job,
	// or one taken out): their values go to the new column from this
	// version on, and the old column keeps what older files hold.
	Moved []Move `json:"moved,omitempty"`
}

// Move is a source field that changed column.
type Move struct {
	Path string `json:"path"`
	From string `json:"from"`
	To   string `json:"to"`
}

func (m Move) String() string { return fmt.Sprintf("%s -> %s", m.From, m.To) }

// Widening is one column whose type became wider.
type Widening struct {
	Column string      `json:"column"`
	From   column.Type `json:"from"`
	To     column.Type `json:"to"`
}

func (w Widening) String() string { return fmt.Sprintf("%s %s -> %s", w.Column, w.From, w.To) }

// Empty reports whether the version changed nothing.
func (c Changes) Empty() bool { return len(c.Added) == 0 && len(c.Widened) == 0 && len(c.Moved) == 0 }

// Column returns the column named name.
func (s Schema) Column(name string) (Column, bool) {
	i := slices.IndexFunc(s.Columns, func(c Column) bool { return c.Name == name })
	if i < 0 {
		return Column{}, false
	}
	return s.Columns[i], true
}

// Types maps each column name to its type.
func (s Schema) Types() map[string]column.Type {
	out := make(map[string]column.Type, len(s.Columns))
	for _, c := range s.Columns {
		out[c.Name] = c.Type
	}
	return out
}

// Join is the narrowest type that holds values of both a and b: bigint and
// double are double, any other two different types are string. The
// timestamp types only join with themselves.
func Join(a, b column.Type) column.Type {
	switch {
	case a == b:
		return a
	case a == column.TypeBigint && b == column.TypeDouble, a == column.TypeDouble && b == column.TypeBigint:
		return column.TypeDouble
	}
	return column.TypeString
}

// Merge returns the schema that holds s and a run's columns: runTypes maps
// each source path the run saw to the type its values need (pins already
// applied, see mapper.RunTypes). New paths get new columns, named by
// column.ResolveNames without taking a name the table has, and appended
// in name order; known paths widen their column when they must. The
// returned Changes are empty, and the schema is s, when nothing changed.
// It fails when a pin would narrow a column.
func Merge(s Schema, spec transform.Spec, runTypes map[string]column.Type) (Schema, Changes, []column.Collision, error) {
	next := s
	next.Columns = slices.Clone(s.Columns)
	version := s.Version + 1
	var ch Changes
	local, utc := spec.TimestampColumns()
	if s.Version == 0 {
		next.Columns = append(next.Columns,
			Column{Name: local, Type: column.TypeLocalTime, Since: version},
			Column{Name: utc, Type: column.TypeUTCTime, Since: version})
	}
	byPath := map[string]int{}
	taken := []string{}
	for i, c := range next.Columns {
		taken = append(taken, c.Name)
		for _, p := range c.Paths {
			byPath[p] = i
		}
	}
	var newPaths []string
	moves := map[string]string{}
	for _, path := range slices.Sorted(maps.Keys(runTypes)) {
		i, ok := byPath[path]
		if ok {
			if to, move := moveTo(spec, next.Columns[i], path); move {
				// The path leaves its column, which keeps the values older
				// files hold, for the column the spec names now.
				c := &next.Columns[i]
				c.Paths = slices.DeleteFunc(slices.Clone(c.Paths), func(p string) bool { return p == path })
				ch.Moved = append(ch.Moved, Move{Path: path, From: c.Name, To: to})
				moves[path] = to
				ok = false
			}
		}
		if !ok {
			newPaths = append(newPaths, path)
			continue
		}
		c := &next.Columns[i]
		want := Join(c.Type, runTypes[path])
		if pin, ok := spec.PinnedType(path); ok {
			if Join(c.Type, pin) != pin {
				return s, Changes{}, nil, fmt.Errorf("%s: pinned %s, but column %s is already %s in the table (since version %d) and its files hold %s values; a pin can only keep or widen a column's type",
					pinField(path), pin, c.Name, c.Type, c.Since, c.Type)
			}
			want = pin
		}
		if want != c.Type {
			ch.Widened = append(ch.Widened, Widening{Column: c.Name, From: c.Type, To: want})
			c.Type = want
		}
	}
	// Paths the spec names (derived columns, renames) take their name;
	// the others get theirs from ResolveNames, never one of those.
	var natural []string
	named := map[string]string{}
	for _, path := range newPaths {
		if to, ok := moves[path]; ok {
			named[path] = to
		} else if to, ok := targetName(spec, path); ok {
			named[path] = to
		} else {
			natural = append(natural, path)
		}
	}
	var added []Column
	for _, path := range slices.Sorted(maps.Keys(named)) {
		to := named[path]
		_, derived := column.IsDerivedPath(path)
		renamed := !derived && to != column.NameOf(path)
		j := slices.IndexFunc(next.Columns, func(c Column) bool { return c.Name == to })
		if j < 0 {
			added = append(added, Column{Name: to, Type: runTypes[path], Paths: []string{path}, Since: version, Renamed: renamed})
			taken = append(taken, to)
			continue
		}
		// A column of that name exists: it takes the path if no other
		// source field writes to it (a rename back, a derived column
		// that was dropped and is back).
		c := &next.Columns[j]
		if len(c.Paths) > 0 {
			return s, Changes{}, nil, fmt.Errorf("%s: the table's column %s holds source field %s; choose another name",
				nameField(spec, path), to, c.Paths[0])
		}
		c.Paths, c.Renamed = []string{path}, renamed
		want := Join(c.Type, runTypes[path])
		if pin, ok := spec.PinnedType(path); ok {
			want = pin
		}
		if want != c.Type {
			ch.Widened = append(ch.Widened, Widening{Column: c.Name, From: c.Type, To: want})
			c.Type = want
		}
	}
	newPaths = natural
	names, coll := column.ResolveNames(newPaths, append(taken, spec.NamedColumns()...))
	for _, path := range newPaths {
		added = append(added, Column{Name: names[path], Type: runTypes[path], Paths: []string{path}, Since: version})
	}
	slices.SortFunc(added, func(a, b Column) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range added {
		ch.Added = append(ch.Added, c.Name)
	}
	next.Columns = append(next.Columns, added...)
	if s.Version == 0 {
		// The first version is in name order, as the files' columns are.
		slices.SortFunc(next.Columns, func(a, b Column) int { return strings.Compare(a.Name, b.Name) })
		ch.Added = nil
		for _, c := range next.Columns {
			ch.Added = append(ch.Added, c.Name)
		}
	}
	if ch.Empty() {
		return s, ch, coll, nil
	}
	next.Version = version
	next.Changes = ch
	if len(ch.Widened) == 0 && next.Converted == s.Version {
		next.Converted = version // nothing to rewrite
	}
	return next, ch, coll, nil
}

// moveTo says whether a known path must leave column c, and for which
// name: the spec renames it to another name, or c got its name from a
// rename the spec no longer has.
func moveTo(spec transform.Spec, c Column, path string) (string, bool) {
	if to, ok := targetName(spec, path); ok {
		return to, to != c.Name
	}
	if natural := column.NameOf(path); c.Renamed && natural != c.Name {
		return natural, true
	}
	return "", false
}

// targetName is the name the spec gives path's column, if any. A path
// renamed back to its own column name has no target: it is not "named".
func targetName(spec transform.Spec, path string) (string, bool) {
	return spec.TargetName(path)
}

// pinField names the spec field that fixes path's type.
func pinField(path string) string {
	if n, ok := column.IsDerivedPath(path); ok {
		return "derive " + n + ".type"
	}
	return "columns." + path
}

// nameField names the spec field that names path's column.
func nameField(spec transform.Spec, path string) string {
	if n, ok := column.IsDerivedPath(path); ok {
		return "derive " + n
	}
	return "rename." + column.NameOf(path)
}

// Plan is the run's column.Plan for the table's schema s: each
// source path's column, every column's type, and the table order.
func (s Schema) Plan(spec transform.Spec, collisions []column.Collision) column.Plan {
	names := map[string]string{}
	order := make([]column.Column, len(s.Columns))
	for i, c := range s.Columns {
		order[i] = column.Column{Name: c.Name, Type: c.Type}
		for _, p := range c.Paths {
			names[p] = c.Name
		}
	}
	return column.NewPlan(spec.TimestampField, names, order, collisions)
}
