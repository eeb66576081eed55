package storage

import "io"

// CountingReader counts the bytes read through it and keeps the first
// error other than io.EOF of the reader under it, so that a reader of an
// object that a decoder wraps (gzip, a line scanner) learns how much it
// read and tells a storage failure (retry) from a corrupt stream
// (quarantine).
type CountingReader struct {
	R   io.Reader
	N   int64 // bytes read
	Err error // the first error of R other than io.EOF
}

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	if err != nil && err != io.EOF && c.Err == nil {
		c.Err = err
	}
	return n, err
}
