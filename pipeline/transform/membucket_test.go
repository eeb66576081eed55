package transform

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"sluice/pipeline/storage"
)

// memBucket is an in-memory storage.Bucket that records writes and deletes.
type memBucket struct {
	mu      sync.Mutex
	objs    map[string][]byte
	written []string // keys put or deleted, in order
}

func newMemBucket() *memBucket { return &memBucket{objs: map[string][]byte{}} }

func (b *memBucket) Location() string { return "mem://" }

func (b *memBucket) sortedKeys(prefix string) []string {
	var ks []string
	for k := range b.objs {
		if strings.HasPrefix(k, prefix) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func (b *memBucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	b.mu.Lock()
	ks := b.sortedKeys(prefix)
	infos := make([]storage.ObjectInfo, len(ks))
	for i, k := range ks {
		infos[i] = storage.ObjectInfo{Key: k, Size: int64(len(b.objs[k])), ETag: fmt.Sprint(len(b.objs[k]))}
	}
	b.mu.Unlock()
	for _, oi := range infos {
		if err := fn(oi); err != nil {
			return err
		}
	}
	return nil
}

func (b *memBucket) ListDirs(ctx context.Context, prefix string) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var dirs []string
	for _, k := range b.sortedKeys(prefix) {
		rest := k[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			d := prefix + rest[:i+1]
			if len(dirs) == 0 || dirs[len(dirs)-1] != d {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs, nil
}

func (b *memBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.objs[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(v)), nil
}

func (b *memBucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.objs[key]
	if !ok {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	return storage.ObjectInfo{Key: key, Size: int64(len(v)), ModTime: time.Time{}}, nil
}

func (b *memBucket) Put(ctx context.Context, key string, body io.Reader) error {
	v, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objs[key] = v
	b.written = append(b.written, key)
	return nil
}

func (b *memBucket) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.objs[key]; ok {
		b.written = append(b.written, key)
	}
	delete(b.objs, key)
	return nil
}

// snapshot copies every object.
func (b *memBucket) snapshot() map[string][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string][]byte, len(b.objs))
	for k, v := range b.objs {
		out[k] = slices.Clone(v)
	}
	return out
}

func (b *memBucket) resetLog() {
	b.mu.Lock()
	b.written = nil
	b.mu.Unlock()
}
