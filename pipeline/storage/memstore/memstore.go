// Package memstore is an in-memory storage.Bucket for unit tests of code
// that reads and writes objects. It passes the same acceptance test as the
// real backends (storagetest.AcceptanceTest), so a test that passes on it
// means what it would on a folder or S3; tests of a storage boundary itself
// still use filestore and a real S3 server.
package memstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"sluice/pipeline/storage"
)

// Bucket holds objects in a map.
type Bucket struct {
	mu   sync.Mutex
	objs map[string]object
	gen  int64
}

type object struct {
	data []byte
	info storage.ObjectInfo
}

// New returns an empty bucket.
func New() *Bucket { return &Bucket{objs: map[string]object{}} }

// Location is mem:///.
func (b *Bucket) Location() string { return "mem:///" }

// Objects returns a copy of every object's content by key.
func (b *Bucket) Objects() map[string][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string][]byte, len(b.objs))
	for k, o := range b.objs {
		out[k] = o.data
	}
	return out
}

func (b *Bucket) keys(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ks []string
	for k := range maps.Keys(b.objs) {
		if strings.HasPrefix(k, prefix) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// List calls fn for every object under prefix in key order.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	for _, k := range b.keys(prefix) {
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := b.Stat(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// ListDirs returns the immediate sub-folders of prefix.
func (b *Bucket) ListDirs(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []string
	for _, k := range b.keys(prefix) {
		rest := k[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			d := prefix + rest[:i+1]
			if len(out) == 0 || out[len(out)-1] != d {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// Get opens an object.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return b.GetRange(ctx, key, 0, -1)
}

// GetRange opens length bytes of an object from offset.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objs[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	data := o.data[min(offset, int64(len(o.data))):]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Copy stores the object at src under dst too.
func (b *Bucket) Copy(ctx context.Context, src, dst string) error {
	rc, err := b.Get(ctx, src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return b.Put(ctx, dst, rc)
}

// Stat describes an object.
func (b *Bucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objs[key]
	if !ok {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	return o.info, nil
}

var (
	_ storage.Bucket            = (*Bucket)(nil)
	_ storage.Copier            = (*Bucket)(nil)
	_ storage.ConditionalPutter = (*Bucket)(nil)
)

// PutIfMatch stores body under key only if the object's ETag is etag, or,
// for etag "", only if there is none (see storage.ConditionalPutter).
func (b *Bucket) PutIfMatch(ctx context.Context, key string, body io.Reader, etag string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("put %q: invalid key", key)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	o, exists := b.objs[key]
	if (etag == "" && exists) || (etag != "" && (!exists || o.info.ETag != etag)) {
		return "", fmt.Errorf("put %s: %w", key, storage.ErrPreconditionFailed)
	}
	return b.store(key, data).ETag, nil
}

// Put stores body under key. The ETag changes on every write, as S3's does
// for different content and a folder's does for a new modification time.
func (b *Bucket) Put(ctx context.Context, key string, body io.Reader) error {
	if !validKey(key) {
		return fmt.Errorf("put %q: invalid key", key)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.store(key, data)
	return nil
}

// store puts data under key; b.mu is held.
func (b *Bucket) store(key string, data []byte) storage.ObjectInfo {
	sum := sha256.Sum256(data)
	b.gen++
	o := object{data: data, info: storage.ObjectInfo{
		Key: key, Size: int64(len(data)), ModTime: time.Now(),
		ETag: fmt.Sprintf("%s-%d", hex.EncodeToString(sum[:8]), b.gen),
	}}
	b.objs[key] = o
	return o.info
}

// Delete removes key; a missing key is not an error.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objs, key)
	return nil
}

func validKey(key string) bool {
	return key != "" && !strings.HasPrefix(key, "/") && !strings.HasSuffix(key, "/") && !strings.Contains(key, "//")
}
