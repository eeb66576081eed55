package intermediate

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/klauspost/compress/s2"

	"sluice/pipeline/storage"
)

// Span is a byte range of one intermediate file: some contiguous virtual
// buckets, Raw bytes of records once decoded.
type Span struct {
	Key    string `json:"key"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Raw    int64  `json:"raw"`
	Rows   int64  `json:"rows"`
}

// SpanOf is the span of buckets [lo, hi) of ix (counted from ix's first
// bucket) in the file at key.
func SpanOf(key string, ix Index, lo, hi int) Span {
	off, n, raw, rows := ix.Span(lo, hi)
	return Span{Key: key, Offset: off, Length: n, Raw: raw, Rows: rows}
}

// Reader loads spans. It keeps one S2 decoder for all of them.
type Reader struct {
	codec string
	zr    *s2.Reader
}

// NewReader reads files written with codec.
func NewReader(codec string) *Reader {
	r := &Reader{codec: codec}
	if codec == CodecS2 {
		r.zr = s2.NewReader(nil)
	}
	return r
}

// Load reads the records of a span into memory (into buf when it is large
// enough) and returns them.
func (r *Reader) Load(ctx context.Context, b storage.Reader, sp Span, buf []byte) ([]byte, error) {
	if sp.Length == 0 {
		return buf[:0], nil
	}
	rc, err := b.GetRange(ctx, sp.Key, sp.Offset, sp.Length)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sp.Key, err)
	}
	defer rc.Close()
	var src io.Reader = rc
	if r.codec == CodecS2 {
		r.zr.Reset(rc)
		defer r.zr.Reset(nil)
		src = r.zr
	}
	out := bytes.NewBuffer(buf[:0])
	out.Grow(int(sp.Raw) + bytes.MinRead)
	if _, err := out.ReadFrom(src); err != nil {
		return nil, fmt.Errorf("read %s: %w", sp.Key, err)
	}
	if int64(out.Len()) != sp.Raw {
		return nil, fmt.Errorf("read %s at %d: %d bytes of records, want %d: %w", sp.Key, sp.Offset, out.Len(), sp.Raw, ErrCorrupt)
	}
	return out.Bytes(), nil
}

// LoadAll reads a whole file of size bytes written as one stream (a
// sorted run), decompressing it when the reader's codec says so, into buf
// when it is large enough.
func (r *Reader) LoadAll(ctx context.Context, b storage.Reader, key string, size int64, buf []byte) ([]byte, error) {
	if size == 0 {
		return buf[:0], nil
	}
	rc, err := b.GetRange(ctx, key, 0, size)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	var src io.Reader = rc
	out := bytes.NewBuffer(buf[:0])
	out.Grow(int(size) + bytes.MinRead)
	if r.codec == CodecS2 {
		r.zr.Reset(rc)
		defer r.zr.Reset(nil)
		src = r.zr
		out.Grow(int(3 * size)) // S2 shrinks row records about threefold
	}
	if _, err := out.ReadFrom(src); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if r.codec != CodecS2 && int64(out.Len()) != size {
		return nil, fmt.Errorf("read %s: %d bytes, want %d: %w", key, out.Len(), size, storage.ErrShortSection)
	}
	return out.Bytes(), nil
}
