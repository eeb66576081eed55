package intermediate

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// A spill run is a reduce task's local file of the kept rows of one chunk
// of a slice, sorted, when the slice does not fit the task's memory; the
// task merges its spill runs afterwards. A record is
//
//	varint utc micros, varint local offset seconds, 8 bytes key
//	fingerprint (little endian), uvarint file, uvarint len(key), key,
//	uvarint len(fields), fields
//
// where file is the index of the shard's rows the row came from (whose
// column map decodes its fields). Spill runs live and die within one task:
// the format can change in any release.

// SpillWriter writes a spill run.
type SpillWriter struct {
	w   *bufio.Writer
	hdr []byte
}

// NewSpillWriter writes a spill run to w; Flush ends it.
func NewSpillWriter(w io.Writer) *SpillWriter {
	return &SpillWriter{w: bufio.NewWriterSize(w, 256<<10)}
}

// Add appends one row; errors surface at Flush.
func (s *SpillWriter) Add(us, off int64, fp uint64, file int, key string, fields []byte) {
	h := binary.AppendVarint(s.hdr[:0], us)
	h = binary.AppendVarint(h, off)
	h = binary.LittleEndian.AppendUint64(h, fp)
	h = binary.AppendUvarint(h, uint64(file))
	h = binary.AppendUvarint(h, uint64(len(key)))
	s.w.Write(h)
	s.w.WriteString(key)
	h = binary.AppendUvarint(h[:0], uint64(len(fields)))
	s.w.Write(h)
	s.w.Write(fields)
	s.hdr = h
}

// Flush writes what is buffered.
func (s *SpillWriter) Flush() error { return s.w.Flush() }

// SpillRow is one record of a spill run. Key and Fields are valid until
// the next call of Next.
type SpillRow struct {
	US, Off int64
	FP      uint64
	File    int
	Key     []byte
	Fields  []byte
}

// SpillReader reads a spill run.
type SpillReader struct {
	br    *bufio.Reader
	limit uint64
	Row   SpillRow // the current record
}

// NewSpillReader reads the spill run r; a key or fields longer than limit
// bytes is corrupt.
func NewSpillReader(r io.Reader, limit uint64) *SpillReader {
	return &SpillReader{br: bufio.NewReaderSize(r, 64<<10), limit: limit}
}

// Next reads the next record into Row; it reports false at the end.
func (r *SpillReader) Next() (bool, error) {
	us, err := binary.ReadVarint(r.br)
	if err == io.EOF {
		return false, nil
	}
	var off int64
	var file, n uint64
	var fp [8]byte
	if err == nil {
		off, err = binary.ReadVarint(r.br)
	}
	if err == nil {
		_, err = io.ReadFull(r.br, fp[:])
	}
	if err == nil {
		file, err = binary.ReadUvarint(r.br)
	}
	if err == nil {
		n, err = binary.ReadUvarint(r.br)
	}
	if err == nil {
		r.Row.Key, err = r.readN(r.Row.Key, n)
	}
	if err == nil {
		n, err = binary.ReadUvarint(r.br)
	}
	if err == nil {
		r.Row.Fields, err = r.readN(r.Row.Fields, n)
	}
	if err != nil {
		return false, fmt.Errorf("read spill run: %w", err)
	}
	r.Row.US, r.Row.Off, r.Row.FP, r.Row.File = us, off, binary.LittleEndian.Uint64(fp[:]), int(file)
	return true, nil
}

// readN reads n bytes into buf (reused) and returns them.
func (r *SpillReader) readN(buf []byte, n uint64) ([]byte, error) {
	if n > r.limit {
		return buf, ErrCorrupt
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return buf, err
	}
	return buf, nil
}
