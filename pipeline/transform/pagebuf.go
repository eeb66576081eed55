package transform

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// pageBufferPool is a parquet.BufferPool that keeps a writer's encoded
// pages on disk until their row group is written, like
// parquet.NewFileBufferPool, but faster:
//
//   - every column's pages go to one temp file per writer, in extents of
//     pageExtent bytes, instead of a new temp file per column and row group
//     (creating and deleting them was a tenth of the Parquet writing);
//   - small writes go through a buffer (parquet-go writes a page as four
//     writes, some empty, and each was a syscall on a bare *os.File).
//
// A released buffer's extents are reused. One writer uses the pool, from
// one goroutine; close deletes the file.
type pageBufferPool struct {
	dir     string
	f       *os.File // created on first use
	end     int64    // where the next new extent starts
	extents []int64  // released extents
	free    []*pageBuffer
	err     error // first error of any buffer, for the caller to report
}

const (
	// pageExtent is the unit in which buffers take file space.
	pageExtent = 1 << 20
	// pageBufferSize is one column's write buffer; the pages themselves
	// (about 256 KiB before compression) are usually larger and go straight
	// to the file.
	pageBufferSize = 32 << 10
)

func (p *pageBufferPool) GetBuffer() io.ReadWriteSeeker {
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	b := &pageBuffer{pool: p, buf: make([]byte, 0, pageBufferSize)}
	if p.f == nil && p.err == nil {
		f, err := os.CreateTemp(p.dir, "sluice-pages-*")
		if err != nil {
			p.fail(fmt.Errorf("create page buffer: %w", err))
		}
		p.f = f
	}
	b.err = p.err
	return b
}

func (p *pageBufferPool) PutBuffer(rws io.ReadWriteSeeker) {
	b, ok := rws.(*pageBuffer)
	if !ok || b.err != nil {
		return
	}
	p.extents = append(p.extents, b.ext...)
	b.ext = b.ext[:0]
	b.buf, b.bufAt, b.pos, b.size = b.buf[:0], 0, 0, 0
	p.free = append(p.free, b)
}

func (p *pageBufferPool) extent() int64 {
	if n := len(p.extents); n > 0 {
		e := p.extents[n-1]
		p.extents = p.extents[:n-1]
		return e
	}
	e := p.end
	p.end += pageExtent
	return e
}

func (p *pageBufferPool) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *pageBufferPool) close() {
	if p.f != nil {
		p.f.Close()
		os.Remove(p.f.Name())
		p.f = nil
	}
	p.extents, p.free = nil, nil
}

// pageBuffer is one column's pages: the logical bytes [0, size), stored in
// the pool's file at the extents ext. Pending writes are buf, to be written
// at logical offset bufAt.
type pageBuffer struct {
	pool  *pageBufferPool
	ext   []int64
	buf   []byte
	bufAt int64
	pos   int64 // current offset
	size  int64 // logical size
	err   error // sticky
}

// writeAt writes p at logical offset off, taking extents as needed.
func (b *pageBuffer) writeAt(p []byte, off int64) error {
	for len(p) > 0 {
		e := int(off / pageExtent)
		for len(b.ext) <= e {
			b.ext = append(b.ext, b.pool.extent())
		}
		in := off % pageExtent
		n := int(min(int64(len(p)), pageExtent-in))
		if _, err := b.pool.f.WriteAt(p[:n], b.ext[e]+in); err != nil {
			return b.setErr(fmt.Errorf("write page buffer: %w", err))
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

func (b *pageBuffer) setErr(err error) error {
	if b.err == nil {
		b.err = err
		b.pool.fail(err)
	}
	return b.err
}

func (b *pageBuffer) flush() error {
	if b.err != nil {
		return b.err
	}
	if len(b.buf) > 0 {
		if err := b.writeAt(b.buf, b.bufAt); err != nil {
			return err
		}
		b.buf = b.buf[:0]
	}
	return nil
}

func (b *pageBuffer) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(b.buf) > 0 && b.bufAt+int64(len(b.buf)) != b.pos {
		if err := b.flush(); err != nil {
			return 0, err
		}
	}
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flush(); err != nil {
			return 0, err
		}
	}
	if len(p) >= cap(b.buf) {
		if err := b.writeAt(p, b.pos); err != nil {
			return 0, err
		}
	} else {
		if len(b.buf) == 0 {
			b.bufAt = b.pos
		}
		b.buf = append(b.buf, p...)
	}
	b.pos += int64(len(p))
	b.size = max(b.size, b.pos)
	return len(p), nil
}

func (b *pageBuffer) Seek(offset int64, whence int) (int64, error) {
	if err := b.flush(); err != nil {
		return 0, err
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.pos
	case io.SeekEnd:
		offset += b.size
	default:
		return 0, errors.New("page buffer: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("page buffer: negative offset")
	}
	b.pos = offset
	return offset, nil
}

func (b *pageBuffer) Read(p []byte) (int, error) {
	if err := b.flush(); err != nil {
		return 0, err
	}
	if b.pos >= b.size {
		return 0, io.EOF
	}
	e, in := int(b.pos/pageExtent), b.pos%pageExtent
	if e >= len(b.ext) {
		return 0, b.setErr(errors.New("read page buffer: offset beyond its extents"))
	}
	p = p[:min(int64(len(p)), b.size-b.pos, pageExtent-in)]
	n, err := b.pool.f.ReadAt(p, b.ext[e]+in)
	b.pos += int64(n)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	if err != nil {
		return n, b.setErr(fmt.Errorf("read page buffer: %w", err))
	}
	return n, nil
}

// WriteTo copies the rest of the buffer to w through the write buffer,
// which is empty while reading; io.Copy would allocate one per call.
func (b *pageBuffer) WriteTo(w io.Writer) (int64, error) {
	if err := b.flush(); err != nil {
		return 0, err
	}
	var total int64
	chunk := b.buf[:cap(b.buf)]
	for b.pos < b.size {
		n, err := b.Read(chunk)
		if n > 0 {
			m, werr := w.Write(chunk[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
