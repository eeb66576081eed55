// Package iocount counts the bytes that pass through a reader or a
// writer: what the map read of an object, what the crawler sampled, what
// the reduce and the Parquet writer wrote.
package iocount

import "io"

// Reader counts the bytes read through it and keeps the first error
// other than io.EOF of the reader under it, so that a reader of an object
// that a decoder wraps (gzip, a line scanner) learns how much it read and
// tells a storage failure (retry) from a corrupt stream (quarantine).
type Reader struct {
	R   io.Reader
	N   int64 // bytes read
	Err error // the first error of R other than io.EOF
}

func (c *Reader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	if err != nil && err != io.EOF && c.Err == nil {
		c.Err = err
	}
	return n, err
}

// Writer counts the bytes written through it.
type Writer struct {
	W io.Writer
	N int64 // bytes written
}

func (c *Writer) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
