package storage

import (
	"context"
	"fmt"
	"io"
)

// NewReaderAt reads the object at key with ranged GETs, one per ReadAt:
// for formats read from the end and by parts (a Parquet footer and its
// column chunks), so that only those bytes are fetched.
func NewReaderAt(ctx context.Context, r Reader, key string) io.ReaderAt {
	return &readerAt{ctx: ctx, r: r, key: key}
}

type readerAt struct {
	ctx context.Context
	r   Reader
	key string
}

func (ra *readerAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	rc, err := ra.r.GetRange(ra.ctx, ra.key, off, int64(len(p)))
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", ra.key, off, err)
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF // the object ends before p does
	}
	return n, err
}
