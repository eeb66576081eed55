package transform

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

// columnName maps a source path (segments joined with ".") to its column
// name: each segment snake_cased, joined with "_".
func columnName(p string) string {
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
		n := columnName(p)
		if taken[n] {
			losers = append(losers, p)
			continue
		}
		taken[n] = true
		names[p] = n
	}
	var coll []Collision
	for _, p := range losers {
		n := columnName(p)
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
