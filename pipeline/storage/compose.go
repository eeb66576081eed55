package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// A Section is one piece of an object that Compose builds: Length bytes of
// the object Key (of the same bucket) from Offset, or, when Key is empty,
// the bytes Data.
type Section struct {
	Key    string
	Offset int64
	Length int64
	Data   []byte
}

// Size is the number of bytes the section adds.
func (s Section) Size() int64 {
	if s.Key == "" {
		return int64(len(s.Data))
	}
	return s.Length
}

// Composer is implemented by buckets that build an object from ranges of
// others without moving their bytes through the caller (S3: a multipart
// upload whose parts are server-side copies; a folder: the kernel's
// copy_file_range). Compose uses it when it can.
type Composer interface {
	// Compose stores under key the concatenation of sections, replacing
	// any object there; readers never see a partly composed object. A
	// missing source gives ErrNotExist, and a source shorter than its
	// section is an error.
	Compose(ctx context.Context, key string, sections []Section) error
}

// ErrShortSection reports a source object that ends before its section.
var ErrShortSection = errors.New("source object ends before its section")

// Compose stores under key the concatenation of sections: on the server
// when b is a Composer, else by streaming every section through the
// caller into one Put.
func Compose(ctx context.Context, b Bucket, key string, sections []Section) error {
	if c, ok := b.(Composer); ok {
		if err := c.Compose(ctx, key, sections); err != nil {
			return fmt.Errorf("compose %s: %w", key, err)
		}
		return nil
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := WriteSections(ctx, b, pw, sections)
		pw.CloseWithError(err)
		done <- err
	}()
	err := b.Put(ctx, key, pr)
	pr.CloseWithError(err) // a failed Put stops the writer
	if werr := <-done; werr != nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("compose %s: %w", key, err)
	}
	return nil
}

// WriteSections writes the bytes of sections, read from r, to w in order.
func WriteSections(ctx context.Context, r Reader, w io.Writer, sections []Section) error {
	for _, s := range sections {
		if s.Key == "" {
			if _, err := w.Write(s.Data); err != nil {
				return err
			}
			continue
		}
		if s.Length == 0 {
			continue
		}
		rc, err := r.GetRange(ctx, s.Key, s.Offset, s.Length)
		if err != nil {
			return err
		}
		n, err := io.Copy(w, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", s.Key, err)
		}
		if n != s.Length {
			return fmt.Errorf("%s: %d bytes at %d, want %d: %w", s.Key, n, s.Offset, s.Length, ErrShortSection)
		}
	}
	return nil
}
