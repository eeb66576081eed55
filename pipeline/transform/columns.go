package transform

import (
	"slices"

	"sluice/pipeline/column"
	"sluice/pipeline/expr"
)

// What the spec says of the output's columns: the names it gives, the
// types it fixes, and the problems of its expressions.

// TargetName is the name the spec gives the column of a source path, when
// it gives one: a derived column's name, or the rename of the path's
// column name.
func (s Spec) TargetName(path string) (string, bool) {
	if n, ok := column.IsDerivedPath(path); ok {
		return n, true
	}
	if len(s.Rename) == 0 {
		return "", false
	}
	to, ok := s.Rename[column.Name(path)]
	return to, ok
}

// NamedColumns are the names the spec claims: derived columns and rename
// targets. No other source field takes one of them (it gets a suffix, as
// in a collision).
func (s Spec) NamedColumns() []string {
	var out []string
	for _, d := range s.Derive {
		out = append(out, d.Name)
	}
	for _, to := range s.Rename {
		out = append(out, to)
	}
	slices.Sort(out)
	return out
}

// PinnedType is the type the spec fixes for a source path: a pin
// (Spec.Columns) or a derived column's declared type.
func (s Spec) PinnedType(path string) (column.Type, bool) {
	if t, ok := s.Columns[path]; ok {
		return t, true
	}
	if n, ok := column.IsDerivedPath(path); ok {
		for _, d := range s.Derive {
			if d.Name == n && d.Type != "" {
				return column.ParseType(d.Type)
			}
		}
	}
	return 0, false
}

// TimestampColumns are the names of the generated columns: the event's
// local wall-clock time and its instant.
func (s Spec) TimestampColumns() (local, utc string) {
	return column.TimestampColumns(s.TimestampField)
}

// ExprProblems lists every problem of where, derive and rename (see
// expr.Check). Empty when the spec's expressions are fine.
func (s Spec) ExprProblems() []error {
	local, utc := s.TimestampColumns()
	return expr.Check(s.Where, s.Derive, s.Rename, local, utc)
}
