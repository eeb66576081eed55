package intermediate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Sorted runs: how a reduce task hands its deduplicated rows to the encode
// tasks of their row group. A reduce task sorts the rows of its slice of
// virtual buckets in output order, (utc micros, key fingerprint), and
// writes one run per column group of the date, each holding every row
// with only the fields of that group's columns; an encode task merges the
// runs of its group from every slice of its row group. A sorted record is
//
//	varint utc micros, varint local offset seconds,
//	8 bytes key fingerprint (KeyFingerprint, little endian),
//	uvarint len(fields), fields
//
// where fields are as in row records (see the package comment), but with
// the date's output column index as column id and every value already of
// its column's type.

// SortedRow is a decoded sorted record. Fields points into the record.
type SortedRow struct {
	US, Off int64
	FP      uint64
	Fields  []byte
}

// AppendSortedRow appends a sorted record.
func AppendSortedRow(b []byte, us, off int64, fp uint64, fields []byte) []byte {
	b = binary.AppendVarint(b, us)
	b = binary.AppendVarint(b, off)
	b = binary.LittleEndian.AppendUint64(b, fp)
	b = binary.AppendUvarint(b, uint64(len(fields)))
	return append(b, fields...)
}

// maxSortedRecord bounds one record's fields: a line is at most 32 MiB
// (the map quarantines longer ones), and a record never holds more than
// its line.
const maxSortedRecord = 64 << 20

// SortedReader reads the records of one run in order.
type SortedReader struct {
	br  *bufio.Reader
	buf []byte
	Row SortedRow // the current record, valid until the next call of Next
}

// NewSortedReader reads the run r.
func NewSortedReader(r *bufio.Reader) *SortedReader { return &SortedReader{br: r} }

// Next reads the next record into Row; it returns false at the end.
func (r *SortedReader) Next() (bool, error) {
	us, err := binary.ReadVarint(r.br)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	var off int64
	var n uint64
	if err == nil {
		off, err = binary.ReadVarint(r.br)
	}
	var fp [8]byte
	if err == nil {
		_, err = io.ReadFull(r.br, fp[:])
	}
	if err == nil {
		n, err = binary.ReadUvarint(r.br)
	}
	if err == nil && n > maxSortedRecord {
		err = ErrCorrupt
	}
	if err == nil {
		if uint64(cap(r.buf)) < n {
			r.buf = make([]byte, n)
		}
		r.buf = r.buf[:n]
		_, err = io.ReadFull(r.br, r.buf)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return false, fmt.Errorf("read sorted run: %w", err)
	}
	r.Row = SortedRow{US: us, Off: off, FP: binary.LittleEndian.Uint64(fp[:]), Fields: r.buf}
	return true, nil
}

// SortedLess is the output order of sorted records: by instant, then key
// fingerprint.
func SortedLess(a, b *SortedRow) bool {
	if a.US != b.US {
		return a.US < b.US
	}
	return a.FP < b.FP
}

// AssembleKeys returns the tail of the keys file of one output file made
// of the keys files of its slices, ixs in ascending order of their
// disjoint virtual bucket ranges: the file is the slices' fingerprints
// (bytes [0, ix.Offset[VBuckets]) of each), end to end, then this tail.
func AssembleKeys(ixs []Index) ([]byte, error) {
	k := &KeysWriter{ix: Index{Offset: make([]int64, VBuckets+1), Raw: make([]int64, VBuckets+1), Rows: make([]int64, VBuckets+1)}}
	var base, rows int64
	for _, ix := range ixs {
		if ix.Buckets() != VBuckets {
			return nil, fmt.Errorf("keys index of %d buckets: %w", ix.Buckets(), ErrCorrupt)
		}
		for v := range VBuckets {
			n := ix.Rows[v+1] - ix.Rows[v]
			if n == 0 {
				continue
			}
			if v < k.vb {
				return nil, fmt.Errorf("keys of bucket %d after %d: %w", v, k.vb, ErrCorrupt)
			}
			k.advance(v)
			k.ix.Rows[v+1] += n
			k.ix.Offset[v+1] = base + ix.Offset[v+1]
			k.ix.Raw[v+1] = k.ix.Offset[v+1]
		}
		base += ix.Offset[VBuckets]
		rows += ix.Rows[VBuckets]
	}
	k.advance(VBuckets - 1)
	if k.ix.Rows[VBuckets] != rows {
		return nil, fmt.Errorf("assembled keys index holds %d rows, want %d: %w", k.ix.Rows[VBuckets], rows, ErrCorrupt)
	}
	return k.tail()
}
