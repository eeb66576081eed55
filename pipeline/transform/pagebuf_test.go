package transform

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
)

// TestPageBufferPool writes pages of mixed sizes (empty, small, larger than
// the write buffer and than an extent) to several buffers at once, reads
// them back the way parquet-go does (Seek to 0, io.Copy), and checks that
// released buffers and extents are reused without stale bytes showing.
func TestPageBufferPool(t *testing.T) {
	t.Parallel()
	pool := &pageBufferPool{dir: t.TempDir()}
	defer pool.close()
	rng := rand.New(rand.NewSource(1))
	for round := range 3 {
		bufs := make([]io.ReadWriteSeeker, 5)
		want := make([]bytes.Buffer, len(bufs))
		for i := range bufs {
			bufs[i] = pool.GetBuffer()
			if off, err := bufs[i].Seek(0, io.SeekStart); err != nil || off != 0 {
				t.Fatal(off, err)
			}
		}
		for range 200 {
			i := rng.Intn(len(bufs))
			var n int
			switch rng.Intn(4) {
			case 0:
				n = 0
			case 1:
				n = rng.Intn(100)
			case 2:
				n = rng.Intn(3 * pageBufferSize)
			default:
				if round == 1 {
					n = rng.Intn(2 * pageExtent)
				}
			}
			p := make([]byte, n)
			rng.Read(p)
			if m, err := bufs[i].Write(p); err != nil || m != n {
				t.Fatal(m, err)
			}
			want[i].Write(p)
		}
		for i, b := range bufs {
			if off, err := b.Seek(0, io.SeekStart); err != nil || off != 0 {
				t.Fatal(off, err)
			}
			var got bytes.Buffer
			if _, err := io.Copy(&got, b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want[i].Bytes()) {
				t.Fatalf("round %d buffer %d: read %d bytes, wrote %d", round, i, got.Len(), want[i].Len())
			}
			if end, err := b.Seek(0, io.SeekEnd); err != nil || end != int64(want[i].Len()) {
				t.Fatal(end, err)
			}
			pool.PutBuffer(b)
		}
	}
	if pool.err != nil {
		t.Fatal(pool.err)
	}
}
