package intermediate

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// VBuckets is the number of virtual buckets, and so the most files one
// date can be split into (at 256 MiB a file, 256 GiB of output a day).
const VBuckets = 1024

const vbucketBits = 10

// VBucket is the virtual bucket of a dedupe key. It must never change:
// every process of every version must put a key in the same bucket.
func VBucket(key []byte) int { return int(xxhash.Sum64(key) >> (64 - vbucketBits)) }

// Codecs of a file's segments.
const (
	CodecNone = "none"
	CodecS2   = "s2"
)

// Field kinds, also used as bits of a column's type mask.
const (
	KindNull   byte = 0
	KindBool   byte = 1
	KindInt    byte = 2
	KindDouble byte = 3
	KindString byte = 4
)

// ErrCorrupt reports a record that does not decode.
var ErrCorrupt = errors.New("corrupt intermediate record")

// AppendRowHeader appends the part of a row record before its fields:
// everything the ids record holds, then the timestamp.
func AppendRowHeader(b, key []byte, obj, line uint64, us, off int64) []byte {
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, obj)
	b = binary.AppendUvarint(b, line)
	b = binary.AppendVarint(b, us)
	return binary.AppendVarint(b, off)
}

// Row is a decoded row record. Key and Fields point into the record.
type Row struct {
	Key       []byte
	Obj, Line uint64
	US, Off   int64
	Fields    []byte
}

// ParseRow decodes the row record at the start of b and returns the rest.
func ParseRow(b []byte) (Row, []byte, error) {
	// A row record starts with its ids record.
	id, b, err := ParseID(b)
	r := Row{Key: id.Key, Obj: id.Obj, Line: id.Line}
	if err != nil {
		return r, nil, err
	}
	var ok bool
	if r.US, b, ok = varint(b); !ok {
		return r, nil, ErrCorrupt
	}
	if r.Off, b, ok = varint(b); !ok {
		return r, nil, ErrCorrupt
	}
	l, b, ok := uvarint(b)
	if !ok || l > uint64(len(b)) {
		return r, nil, ErrCorrupt
	}
	r.Fields = b[:l:l]
	return r, b[l:], nil
}

// idsPrefixLen is the length of a row record's ids record.
func idsPrefixLen(rec []byte) (int, error) {
	_, rest, err := ParseID(rec)
	return len(rec) - len(rest), err
}

// ID is a decoded ids record.
type ID struct {
	Key       []byte
	Obj, Line uint64
}

// ParseID decodes the ids record at the start of b and returns the rest.
func ParseID(b []byte) (ID, []byte, error) {
	var r ID
	var n int
	r.Key, b, n = key(b)
	if n < 0 {
		return r, nil, ErrCorrupt
	}
	var ok bool
	if r.Obj, b, ok = uvarint(b); !ok {
		return r, nil, ErrCorrupt
	}
	if r.Line, b, ok = uvarint(b); !ok {
		return r, nil, ErrCorrupt
	}
	return r, b, nil
}

func uvarint(b []byte) (uint64, []byte, bool) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), b[1:], true
	}
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return v, b[n:], true
}

func varint(b []byte) (int64, []byte, bool) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return v, b[n:], true
}

func key(b []byte) ([]byte, []byte, int) {
	l, rest, ok := uvarint(b)
	if !ok || l > uint64(len(rest)) {
		return nil, nil, -1
	}
	return rest[:l:l], rest[l:], int(l)
}

// Index is the layout of one file by virtual bucket, as prefix sums at the
// bucket boundaries: virtual bucket v of the file (or of the slice the
// Index covers, see Slice) is stored in bytes [Offset[v], Offset[v+1]),
// decodes to Raw[v+1]-Raw[v] bytes of records and holds Rows[v+1]-Rows[v]
// records.
type Index struct {
	Offset []int64
	Raw    []int64
	Rows   []int64
}

// Buckets is the number of virtual buckets the index covers.
func (ix Index) Buckets() int { return max(len(ix.Offset)-1, 0) }

// Slice is the index of virtual buckets [lo, hi) of a full index, with its
// positions still absolute in the file.
func (ix Index) Slice(lo, hi int) Index {
	return Index{Offset: ix.Offset[lo : hi+1], Raw: ix.Raw[lo : hi+1], Rows: ix.Rows[lo : hi+1]}
}

// Span is the stored byte range, the decoded size and the record count of
// the index's buckets [lo, hi), counted from the index's first bucket.
func (ix Index) Span(lo, hi int) (off, n, raw, rows int64) {
	return ix.Offset[lo], ix.Offset[hi] - ix.Offset[lo], ix.Raw[hi] - ix.Raw[lo], ix.Rows[hi] - ix.Rows[lo]
}

// indexJSON keeps an index compact in JSON documents: each column as the
// base64 of its uvarint deltas (a full index is ~3 KB, not ~30 KB).
type indexJSON struct {
	First  [3]int64 `json:"first"`
	Offset string   `json:"offset"`
	Raw    string   `json:"raw"`
	Rows   string   `json:"rows"`
}

// MarshalJSON writes the compact form.
func (ix Index) MarshalJSON() ([]byte, error) {
	if len(ix.Offset) == 0 {
		return []byte("null"), nil
	}
	j := indexJSON{First: [3]int64{ix.Offset[0], ix.Raw[0], ix.Rows[0]}}
	j.Offset, j.Raw, j.Rows = deltas(ix.Offset), deltas(ix.Raw), deltas(ix.Rows)
	return json.Marshal(j)
}

// UnmarshalJSON reads the compact form.
func (ix *Index) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*ix = Index{}
		return nil
	}
	var j indexJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var err error
	if ix.Offset, err = undeltas(j.First[0], j.Offset); err == nil {
		if ix.Raw, err = undeltas(j.First[1], j.Raw); err == nil {
			ix.Rows, err = undeltas(j.First[2], j.Rows)
		}
	}
	if err != nil {
		return fmt.Errorf("decode index: %w", err)
	}
	if len(ix.Raw) != len(ix.Offset) || len(ix.Rows) != len(ix.Offset) {
		return errors.New("decode index: columns of different lengths")
	}
	return nil
}

func deltas(v []int64) string {
	b := make([]byte, 0, len(v)*2)
	for i := 1; i < len(v); i++ {
		b = binary.AppendUvarint(b, uint64(v[i]-v[i-1]))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func undeltas(first int64, s string) ([]int64, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	out := []int64{first}
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, ErrCorrupt
		}
		out = append(out, out[len(out)-1]+int64(d))
		b = b[n:]
	}
	return out, nil
}
