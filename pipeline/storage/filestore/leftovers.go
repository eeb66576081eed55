package filestore

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sluice/pipeline/storage"
)

var _ storage.LeftoverRemover = (*Bucket)(nil)

// RemoveLeftovers removes the temporary files of writes that were
// interrupted (a process killed inside Put, Compose or Copy) under prefix
// and last touched before olderThan, with the folders they leave empty.
// Such files are invisible to List and Delete, so nothing else would ever
// remove them. A lock file (of this bucket or of one rooted in a subfolder)
// is not a leftover.
func (b *Bucket) RemoveLeftovers(ctx context.Context, prefix string, olderThan time.Time) (int, int64, error) {
	r := leftoverWalk{b: b, prefix: prefix, olderThan: olderThan}
	if err := r.walk(ctx, ""); err != nil {
		return r.n, r.bytes, fmt.Errorf("remove leftovers under %s: %w", prefix, err)
	}
	return r.n, r.bytes, nil
}

type leftoverWalk struct {
	b         *Bucket
	prefix    string
	olderThan time.Time
	n         int
	bytes     int64
}

func (r *leftoverWalk) walk(ctx context.Context, dirKey string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Join(r.b.root, filepath.FromSlash(dirKey))
	des, err := os.ReadDir(dir)
	if notExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	removed := false
	for _, de := range des {
		key := dirKey + de.Name()
		if de.IsDir() {
			sub := key + "/"
			if strings.HasPrefix(sub, r.prefix) || strings.HasPrefix(r.prefix, sub) {
				if err := r.walk(ctx, sub); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(de.Name(), tmpPrefix) || de.Name() == lockName || !strings.HasPrefix(key, r.prefix) {
			continue
		}
		fi, err := de.Info()
		if notExist(err) {
			continue // renamed into place or removed since ReadDir
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() || !lastTouched(fi).Before(r.olderThan) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !notExist(err) {
			return err
		}
		r.n++
		r.bytes += fi.Size()
		removed = true
	}
	if removed && dirKey != "" {
		r.b.removeEmptyDirs(dir)
	}
	return nil
}

// lastTouched is when the file's content or its links last changed. A
// temporary hard link to an old staged file (Copy) has that file's old
// mtime, but making the link set its change time (ctime) to now.
func lastTouched(fi fs.FileInfo) time.Time {
	t := fi.ModTime()
	if c, ok := changeTime(fi); ok && c.After(t) {
		t = c
	}
	return t
}
