package segmentgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"sluice/pipeline/storage"
)

// memBucket is a minimal in-memory storage.Bucket for tests, until the
// filestore backend lands.
type memBucket struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func newMemBucket() *memBucket { return &memBucket{objs: map[string][]byte{}} }

func (m *memBucket) keys(prefix string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ks []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func (m *memBucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	for _, k := range m.keys(prefix) {
		info, err := m.Stat(ctx, k)
		if err != nil {
			continue
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func (m *memBucket) ListDirs(ctx context.Context, prefix string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, k := range m.keys(prefix) {
		rest := k[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			d := prefix + rest[:i+1]
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out, nil
}

func (m *memBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memBucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	return storage.ObjectInfo{Key: key, Size: int64(len(b)), ModTime: time.Unix(0, 0), ETag: fmt.Sprint(len(b))}, nil
}

func (m *memBucket) Put(ctx context.Context, key string, body io.Reader) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = b
	return nil
}

func (m *memBucket) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return nil
}

func (m *memBucket) Location() string { return "mem:///" }
