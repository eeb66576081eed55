package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"sluice/pipeline/storage"
)

var _ storage.ConditionalPutter = (*Bucket)(nil)

// lockName is the lock file that serialises conditional puts, in the
// bucket's root. Its name starts with tmpPrefix, so listings skip it and no
// key can name it.
const lockName = tmpPrefix + "lock"

// PutIfMatch checks the current ETag and replaces the object while holding
// an exclusive flock on the bucket's lock file, so conditional puts from
// any number of processes on this machine (or on a file system with working
// flock) are atomic with respect to each other. Plain Put does not take the
// lock: callers that need the guarantee must use PutIfMatch for every write
// of the key.
func (b *Bucket) PutIfMatch(ctx context.Context, key string, body io.Reader, etag string) (string, error) {
	if _, err := b.path(key); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(b.root, lockName))
	if err != nil {
		return "", fmt.Errorf("put %s: lock: %w", key, err)
	}
	defer unlock()
	cur, err := b.Stat(ctx, key)
	switch {
	case errors.Is(err, storage.ErrNotExist):
		if etag != "" {
			return "", fmt.Errorf("put %s: object is gone, expected ETag %s: %w", key, etag, storage.ErrPreconditionFailed)
		}
	case err != nil:
		return "", fmt.Errorf("put %s: %w", key, err)
	case etag == "":
		return "", fmt.Errorf("put %s: object exists: %w", key, storage.ErrPreconditionFailed)
	case cur.ETag != etag:
		return "", fmt.Errorf("put %s: ETag is %s, expected %s: %w", key, cur.ETag, etag, storage.ErrPreconditionFailed)
	}
	if err := b.Put(ctx, key, body); err != nil {
		return "", err
	}
	now, err := b.Stat(ctx, key)
	if err != nil {
		return "", err
	}
	return now.ETag, nil
}
