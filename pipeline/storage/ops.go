package storage

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/errgroup"
)

// opConcurrency bounds the requests one helper below has in flight.
const opConcurrency = 16

// Copy stores the object at src under dst too: on the server when b is a
// Copier, through the caller otherwise.
func Copy(ctx context.Context, b Bucket, src, dst string) error {
	if c, ok := b.(Copier); ok {
		if err := c.Copy(ctx, src, dst); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		return nil
	}
	rc, err := b.Get(ctx, src)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	defer rc.Close()
	if err := b.Put(ctx, dst, rc); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// PutFile stores the local file f (written, not yet closed) under key in
// b, moving it into place when b is a FileMover, else uploading it; f is
// closed and gone afterwards either way.
func PutFile(ctx context.Context, b Bucket, key string, f *os.File) error {
	defer os.Remove(f.Name())
	if m, ok := b.(FileMover); ok {
		if err := f.Close(); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		return m.MoveFile(ctx, key, f.Name())
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return b.Put(ctx, key, f)
}

// DeleteKeys removes keys, in batches when b is a BatchDeleter and with
// several requests in flight otherwise, so that many deletions take about
// the time of one.
func DeleteKeys(ctx context.Context, b Bucket, keys []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opConcurrency)
	if bd, ok := b.(BatchDeleter); ok {
		for len(keys) > 0 {
			batch := keys[:min(len(keys), 1000)]
			keys = keys[len(batch):]
			g.Go(func() error { return bd.DeleteBatch(gctx, batch) })
		}
		return g.Wait()
	}
	for _, k := range keys {
		g.Go(func() error { return b.Delete(gctx, k) })
	}
	return g.Wait()
}

// ListKeys returns the keys below prefix for which keep is true (nil keeps
// all), in key order.
func ListKeys(ctx context.Context, r Reader, prefix string, keep func(ObjectInfo) bool) ([]string, error) {
	var keys []string
	err := r.List(ctx, prefix, func(oi ObjectInfo) error {
		if keep == nil || keep(oi) {
			keys = append(keys, oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return keys, nil
}

// DeleteStale removes every object below prefix that keep does not want,
// and returns the removed keys: how a writer clears what an earlier attempt
// or build left next to what it just wrote.
func DeleteStale(ctx context.Context, b Bucket, prefix string, keep func(key string) bool) ([]string, error) {
	stale, err := ListKeys(ctx, b, prefix, func(oi ObjectInfo) bool { return !keep(oi.Key) })
	if err != nil {
		return nil, err
	}
	if err := DeleteKeys(ctx, b, stale); err != nil {
		return nil, err
	}
	return stale, nil
}

// DeletePrefix removes every object below prefix.
func DeletePrefix(ctx context.Context, b Bucket, prefix string) error {
	_, err := DeleteStale(ctx, b, prefix, func(string) bool { return false })
	return err
}
