package storage

import (
	"path/filepath"
	"strings"
)

// CanonicalLocation spells a location one way: s3://bucket[/prefix] with
// no slash at the end, or file:///abs/path for a folder, however it was
// written (./raw, raw/, file:///…/raw). A location that does not parse is
// returned as it is.
func CanonicalLocation(s string) string {
	l, err := ParseLocation(s)
	if err != nil {
		return s
	}
	if l.Scheme == "s3" {
		if l.Path == "" {
			return "s3://" + l.Bucket
		}
		return "s3://" + l.Bucket + "/" + l.Path
	}
	abs, err := filepath.Abs(l.Path)
	if err != nil {
		abs = filepath.Clean(l.Path)
	}
	return "file://" + strings.TrimSuffix(filepath.ToSlash(abs), "/")
}

// SameLocation reports whether two locations name the same place.
func SameLocation(a, b string) bool { return CanonicalLocation(a) == CanonicalLocation(b) }
