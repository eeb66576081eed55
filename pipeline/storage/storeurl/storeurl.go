package storeurl

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/s3store"
)

// Open returns the Bucket at location:
//
//	s3://bucket            an S3 bucket, configured by s3opts
//	s3://bucket/a/prefix   the same, with every key below a/prefix/
//	file:///abs/path       a local folder
//	/abs/path, rel/path    a local folder (relative to the working directory)
func Open(ctx context.Context, location string, s3opts s3store.Options) (storage.Bucket, error) {
	scheme, _, ok := strings.Cut(location, "://")
	if !ok {
		if location == "" {
			return nil, fmt.Errorf("open storage: empty location")
		}
		return openFile(location, location)
	}
	u, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("open storage %q: %w", location, err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("open storage %q: query, fragment and user info are not supported", location)
	}
	switch strings.ToLower(scheme) {
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("open storage %q: no bucket name", location)
		}
		b, err := s3store.New(ctx, u.Host, u.Path, s3opts)
		if err != nil {
			return nil, fmt.Errorf("open storage %q: %w", location, err)
		}
		return b, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("open storage %q: file URLs must be file:///abs/path", location)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("open storage %q: file URLs need an absolute path", location)
		}
		return openFile(location, u.Path)
	default:
		return nil, fmt.Errorf("open storage %q: unsupported scheme %q (want s3 or file)", location, scheme)
	}
}

func openFile(location, dir string) (storage.Bucket, error) {
	b, err := filestore.New(dir)
	if err != nil {
		return nil, fmt.Errorf("open storage %q: %w", location, err)
	}
	return b, nil
}

// Join appends a slash-separated sub-path to a location, for deriving one
// location from another (a prefix for a job's output, say).
func Join(location, sub string) string {
	sub = strings.Trim(sub, "/")
	if sub == "" {
		return location
	}
	if strings.HasSuffix(location, "/") {
		return location + sub
	}
	return location + "/" + sub
}
