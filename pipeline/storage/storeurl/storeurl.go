package storeurl

import (
	"context"
	"fmt"
	"strings"

	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/s3store"
)

// Open returns the Bucket at location (see storage.ParseLocation for the
// forms it takes); S3 buckets are configured by s3opts.
func Open(ctx context.Context, location string, s3opts s3store.Options) (storage.Bucket, error) {
	loc, err := storage.ParseLocation(location)
	if err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	if loc.Scheme == "s3" {
		b, err := s3store.New(ctx, loc.Bucket, loc.Path, s3opts)
		if err != nil {
			return nil, fmt.Errorf("open storage %q: %w", location, err)
		}
		return b, nil
	}
	return openFile(location, loc.Path)
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
