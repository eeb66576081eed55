package column

import (
	"slices"
	"strconv"
	"strings"
)

// Collision reports a source path that could not keep its natural column
// name because another path (or a generated column) has it.
type Collision struct {
	Path    string `json:"path"`    // source path, segments joined with "."
	Natural string `json:"natural"` // the name it maps to
	Name    string `json:"name"`    // the name it got
}

// Name maps a source path (segments joined with ".") to its column
// name: each segment snake_cased, joined with "_".
func Name(p string) string {
	var b strings.Builder
	b.Grow(len(p) + 8)
	for i, seg := range strings.Split(p, ".") {
		if i > 0 {
			b.WriteByte('_')
		}
		snakeSegment(&b, seg)
	}
	return b.String()
}

// snakeSegment writes one path segment in snake_case. A "_" goes before an
// upper-case letter that follows a lower-case letter or digit, or that
// starts a new word after an acronym (userID -> user_id, HTTPCode ->
// http_code). Anything outside [a-z0-9_] after lower-casing becomes "_",
// one per byte, so the mapping never depends on the text's encoding.
func snakeSegment(b *strings.Builder, s string) {
	if s == "" {
		b.WriteByte('_')
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUpper(c) {
			if i > 0 {
				p := s[i-1]
				nextLower := i+1 < len(s) && isLower(s[i+1])
				if isLower(p) || isDigit(p) || (isUpper(p) && nextLower) {
					b.WriteByte('_')
				}
			}
			b.WriteByte(c + ('a' - 'A'))
			continue
		}
		if isLower(c) || isDigit(c) || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
	}
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ResolveNames gives every source path a unique column name. reserved names
// (the generated columns, the table's columns) are never given to a path. Paths are processed in
// sorted order: the first path with a natural name keeps it; the others get
// the smallest free suffix _2, _3, ... chosen after all natural names are
// claimed, so a suffix never displaces a field that has that name itself.
func ResolveNames(paths []string, reserved []string) (map[string]string, []Collision) {
	sorted := slices.Clone(paths)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	taken := map[string]bool{}
	for _, r := range reserved {
		taken[r] = true
	}
	names := make(map[string]string, len(sorted))
	var losers []string
	for _, p := range sorted {
		n := Name(p)
		if taken[n] {
			losers = append(losers, p)
			continue
		}
		taken[n] = true
		names[p] = n
	}
	var coll []Collision
	for _, p := range losers {
		n := Name(p)
		for k := 2; ; k++ {
			c := n + "_" + strconv.Itoa(k)
			if !taken[c] {
				taken[c] = true
				names[p] = c
				coll = append(coll, Collision{Path: p, Natural: n, Name: c})
				break
			}
		}
	}
	return names, coll
}

// derivePrefix starts the source path of a derived column's values: a
// byte no flattened Segment field starts with (JSON needs \u0000 to write
// it), so a derived column has a path like any column and the column plan,
// the schema and the reduce need nothing of their own for it.
const derivePrefix = "\x00"

// DerivedPath is the source path of derived column name's values.
func DerivedPath(name string) string { return derivePrefix + name }

// IsDerivedPath reports whether a source path is a derived column's, and
// its name.
func IsDerivedPath(path string) (string, bool) { return strings.CutPrefix(path, derivePrefix) }

// NameOf is the name a source path's column has before renames and
// collisions: the flattened, snake_cased path, or a derived column's name.
func NameOf(path string) string {
	if n, ok := IsDerivedPath(path); ok {
		return n
	}
	return Name(path)
}
