package transform

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"sluice/pipeline/storage"
)

// Intermediate format. Per (shard, date) the map writes two S2 streams
// (klauspost/compress/s2, framed), compressed when the scratch bucket is
// remote and of stored (uncompressed) blocks when it is local (localStore):
//
// rows  <prefix>map/shard-NNNNN/date=YYYY-MM-DD.rows
//
//	"SLROWS1\n" then records, each starting with a tag byte:
//	'C' column:  uvarint id, uvarint len, path bytes (source path, "."-joined).
//	            Ids are per shard and defined in a file before first use.
//	'R' row:     uvarint object index, uvarint line, varint utc micros,
//	            varint local offset seconds, uvarint len + dedupe key,
//	            uvarint length of the rest (so a reader can skip it),
//	            uvarint n, then n fields: uvarint column id, kind byte,
//	            payload (bool: 1 byte; int: varint; double: 8 bytes LE;
//	            string: uvarint len + bytes; null: nothing).
//
// ids   <prefix>map/shard-NNNNN/date=YYYY-MM-DD.ids
//
//	"SLIDS1\n" then per row: uvarint len + key, uvarint object index,
//	uvarint line. Reducers of the other dates read these (small) files to
//	find copies of a key that landed on another date.
//
// quarantine <prefix>map/shard-NNNNN/quarantine.ndjson.gz (only when not empty)
//
// manifest <prefix>map/shard-NNNNN/manifest.json, written last: a shard is
// mapped when its manifest exists.
const (
	rowsMagic = "SLROWS1\n"
	idsMagic  = "SLIDS1\n"

	tagColumn = 'C'
	tagRow    = 'R'
)

// Field kinds, also used as bits of a column's type mask.
const (
	kindNull   byte = 0
	kindBool   byte = 1
	kindInt    byte = 2
	kindDouble byte = 3
	kindString byte = 4
)

const (
	maskNull   uint8 = 1 << kindNull
	maskBool   uint8 = 1 << kindBool
	maskInt    uint8 = 1 << kindInt
	maskDouble uint8 = 1 << kindDouble
	maskString uint8 = 1 << kindString
)

// colType is the output type of a column.
type colType uint8

const (
	typeString colType = iota
	typeBool
	typeInt
	typeDouble
	typeLocalTime // generated: wall clock, not adjusted to UTC
	typeUTCTime   // generated: instant
)

// widen picks the output type of a column from every kind it held.
func widen(mask uint8) colType {
	m := mask &^ maskNull
	switch {
	case m&maskString != 0, m&maskBool != 0 && m&(maskInt|maskDouble) != 0:
		return typeString
	case m&maskDouble != 0:
		return typeDouble
	case m&maskInt != 0:
		return typeInt
	case m&maskBool != 0:
		return typeBool
	}
	return typeString
}

// shardManifest is the commit marker and summary of one mapped shard.
type shardManifest struct {
	Version int            `json:"version"`
	Shard   int            `json:"shard"`
	Objects int            `json:"objects"`
	Window  string         `json:"window"`
	Stats   MapStats       `json:"stats"`
	Dates   []manifestDate `json:"dates"`
}

type manifestDate struct {
	Date    Date             `json:"date"`
	Rows    int64            `json:"rows"`
	Bytes   int64            `json:"bytes"`   // uncompressed size of the rows object, to size the read buffer
	Columns map[string]uint8 `json:"columns"` // source path -> kinds seen (bit mask)
}

func shardDir(prefix string, shard int) string {
	return fmt.Sprintf("%smap/shard-%05d/", prefix, shard)
}

func rowsKey(prefix string, shard int, d Date) string {
	return shardDir(prefix, shard) + "date=" + d.String() + ".rows"
}

func idsKey(prefix string, shard int, d Date) string {
	return shardDir(prefix, shard) + "date=" + d.String() + ".ids"
}

func quarantineKey(prefix string, shard int) string {
	return shardDir(prefix, shard) + "quarantine.ndjson.gz"
}

func manifestKey(prefix string, shard int) string {
	return shardDir(prefix, shard) + "manifest.json"
}

// normPrefix makes a scratch prefix usable as a folder ("" stays "").
func normPrefix(p string) string {
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

func readManifest(ctx context.Context, b storage.Reader, prefix string, shard int) (*shardManifest, error) {
	rc, err := b.Get(ctx, manifestKey(prefix, shard))
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("shard %d is not mapped: %w", shard, err)
		}
		return nil, fmt.Errorf("read manifest of shard %d: %w", shard, err)
	}
	defer rc.Close()
	var m shardManifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return nil, fmt.Errorf("decode manifest of shard %d: %w", shard, err)
	}
	if m.Version != 1 || m.Shard != shard {
		return nil, fmt.Errorf("manifest of shard %d: unexpected version %d or shard %d", shard, m.Version, m.Shard)
	}
	return &m, nil
}

func readManifests(ctx context.Context, b storage.Reader, prefix string, shardCount int) ([]*shardManifest, error) {
	out := make([]*shardManifest, shardCount)
	for i := range out {
		m, err := readManifest(ctx, b, prefix, i)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// byteReader decodes the primitives of the intermediate format from a
// fully loaded buffer. Errors are sticky: after a short read every call
// returns zero and err is set.
type byteReader struct {
	b   []byte
	err error
}

var errCorrupt = errors.New("corrupt intermediate record")

func (r *byteReader) byte() byte {
	if len(r.b) == 0 {
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *byteReader) uvarint() uint64 {
	if len(r.b) > 0 && r.b[0] < 0x80 { // one byte: most ids and lengths
		v := uint64(r.b[0])
		r.b = r.b[1:]
		return v
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.err = io.ErrUnexpectedEOF
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// skipField moves past the payload of a field of the given kind.
func (r *byteReader) skipField(kind byte) {
	switch kind {
	case kindNull:
	case kindBool:
		r.byte()
	case kindInt:
		r.varint()
	case kindDouble:
		r.bytes(8)
	case kindString:
		r.bytes(r.uvarint())
	default:
		r.err = errCorrupt
		r.b = nil
	}
}
