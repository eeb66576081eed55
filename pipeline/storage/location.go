package storage

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Location is a parsed bucket location.
type Location struct {
	Scheme string // "s3" or "file"
	Bucket string // s3: the bucket
	// Path is the key prefix below the bucket (s3, without slashes at
	// either end) or the folder (file: absolute, or relative to the working
	// directory).
	Path string
}

// Locations that can be opened:
//
//	s3://bucket            an S3 bucket
//	s3://bucket/a/prefix   the same, with every key below a/prefix/
//	file:///abs/path       a local folder (file://localhost/abs/path too)
//	/abs/path, rel/path    a local folder (relative to the working directory)
var (
	schemeLike = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// ParseLocation reads a location strictly: anything that looks like a URL
// but is not one of the forms above is an error, so that a typo such as
// "s3:/raw" (one slash) is refused instead of being taken for a local
// folder named "s3:".
func ParseLocation(s string) (Location, error) {
	if s == "" {
		return Location{}, fmt.Errorf("empty location")
	}
	scheme, rest, isURL := strings.Cut(s, "://")
	if !isURL {
		if m := schemeLike.FindString(s); m != "" {
			return Location{}, fmt.Errorf("%q is not a location: %q is not followed by //; want s3://bucket/prefix, file:///abs/path or a plain folder path", s, m)
		}
		return Location{Scheme: "file", Path: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, fmt.Errorf("%q is not a location: %w", s, err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Location{}, fmt.Errorf("%q is not a location: query, fragment and user info are not supported", s)
	}
	switch strings.ToLower(scheme) {
	case "s3":
		if u.Host == "" || strings.HasPrefix(rest, "/") {
			return Location{}, fmt.Errorf("%q is not a location: no bucket name (want s3://bucket/prefix)", s)
		}
		if !bucketName.MatchString(u.Host) {
			return Location{}, fmt.Errorf("%q is not a location: %q is not an S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)", s, u.Host)
		}
		return Location{Scheme: "s3", Bucket: u.Host, Path: strings.Trim(u.Path, "/")}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("%q is not a location: file URLs must be file:///abs/path (for a relative folder, give the plain path)", s)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return Location{}, fmt.Errorf("%q is not a location: file URLs need an absolute path", s)
		}
		return Location{Scheme: "file", Path: u.Path}, nil
	}
	return Location{}, fmt.Errorf("%q is not a location: unsupported scheme %q (want s3 or file)", s, scheme)
}
