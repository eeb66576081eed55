package intermediate

import (
	"encoding/binary"
	"fmt"
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
	return append(AppendSortedHeader(b, us, off, fp, len(fields)), fields...)
}

// AppendSortedHeader appends what precedes a sorted record's n bytes of
// fields.
func AppendSortedHeader(b []byte, us, off int64, fp uint64, n int) []byte {
	b = binary.AppendVarint(b, us)
	b = binary.AppendVarint(b, off)
	b = binary.LittleEndian.AppendUint64(b, fp)
	return binary.AppendUvarint(b, uint64(n))
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

// ParseSortedRow decodes the sorted record at the start of b and returns
// the rest.
func ParseSortedRow(b []byte) (SortedRow, []byte, error) {
	var r SortedRow
	var ok bool
	if r.US, b, ok = varint(b); !ok {
		return r, nil, ErrCorrupt
	}
	if r.Off, b, ok = varint(b); !ok || len(b) < 8 {
		return r, nil, ErrCorrupt
	}
	r.FP, b = binary.LittleEndian.Uint64(b), b[8:]
	n, b, ok := uvarint(b)
	if !ok || n > uint64(len(b)) {
		return r, nil, ErrCorrupt
	}
	r.Fields = b[:n:n]
	return r, b[n:], nil
}
