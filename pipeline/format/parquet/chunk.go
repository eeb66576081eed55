package parquet

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding/delta"
	"github.com/parquet-go/parquet-go/encoding/plain"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

const (
	// pageBytes is about how many bytes of values a data page holds
	// before compression, and pageRows the most rows it holds: small
	// enough for the page index to skip data, large enough that page
	// headers and codec calls stay cheap.
	pageBytes = 256 << 10
	pageRows  = 20000
	// indexBoundBytes is the longest min or max a page index entry keeps
	// of a string (longer ones are truncated, the max rounded up), as
	// parquet-go and parquet-java do.
	indexBoundBytes = 16
	// maxStatisticsBytes is the longest min or max a column chunk's
	// statistics keep. One 20 MB string would otherwise make a 40 MB
	// footer that every reader must load before it reads a row. Longer
	// bounds are dropped, the chunk keeping its null count, as
	// parquet-java (Spark, Hive) and Arrow C++ do at the same 4 KiB:
	// truncating them instead would need the format's
	// is_min/max_value_exact flags, and some readers answer MIN and MAX
	// from the statistics.
	maxStatisticsBytes = 4096
)

var (
	levelEncoding      = &rle.Encoding{BitWidth: 1}
	dictIndexEncoding  = &rle.DictionaryEncoding{}
	deltaIntEncoding   = &delta.BinaryPackedEncoding{}
	deltaBytesEncoding = &delta.LengthByteArrayEncoding{}
	plainEncoding      = &plain.Encoding{}
)

// chunk is one encoded column chunk: where it starts in its file, and its
// metadata, page index and bounds, all with file offsets.
type chunk struct {
	meta   format.ColumnChunk
	colIdx format.ColumnIndex
	offIdx format.OffsetIndex
	// min and max are the chunk's bounds, PLAIN encoded (nil when every
	// value is null), before maxStatisticsBytes is applied.
	min, max []byte
}

// encoder encodes column chunks, reusing its buffers from one to the next.
type encoder struct {
	codec compress.Codec
	dict  dictionary
	defs  []byte
	vals  []byte
	zip   []byte
	hdr   bytes.Buffer
	bits  []byte
	proto thrift.CompactProtocol
}

// encodeChunk writes column c's values v to w, which is at offset off in
// its file.
func (e *encoder) encodeChunk(w io.Writer, off int64, c Column, v *Values) (chunk, error) {
	ch := chunk{}
	md := &ch.meta.MetaData
	md.Type = c.Type.physical()
	md.PathInSchema = []string{c.Name}
	md.Codec = e.codec.CompressionCodec()
	md.NumValues = int64(v.Rows())
	ch.meta.FileOffset = off
	useDict := chooseDictionary(v) && buildDictionary(v, &e.dict)
	pageEnc := format.Encoding(format.Plain)
	switch {
	case useDict:
		pageEnc = format.RLEDictionary
		md.Encoding = []format.Encoding{format.Plain, format.RLE, format.RLEDictionary}
	case c.Type == Int64 || c.Type == TimestampLocal || c.Type == TimestampUTC:
		pageEnc = format.DeltaBinaryPacked
		md.Encoding = []format.Encoding{format.RLE, format.DeltaBinaryPacked}
	case c.Type == String:
		pageEnc = format.DeltaLengthByteArray
		md.Encoding = []format.Encoding{format.RLE, format.DeltaLengthByteArray}
	default:
		md.Encoding = []format.Encoding{format.Plain, format.RLE}
	}
	pos := off
	write := func(h *format.PageHeader, body ...[]byte) error {
		e.hdr.Reset()
		if err := thrift.NewEncoder(e.proto.NewWriter(&e.hdr)).Encode(h); err != nil {
			return fmt.Errorf("encode page header: %w", err)
		}
		n := int64(e.hdr.Len())
		if _, err := w.Write(e.hdr.Bytes()); err != nil {
			return err
		}
		for _, b := range body {
			if _, err := w.Write(b); err != nil {
				return err
			}
			n += int64(len(b))
		}
		md.TotalCompressedSize += n
		md.TotalUncompressedSize += int64(e.hdr.Len()) + int64(h.UncompressedPageSize)
		pos += n
		return nil
	}
	if useDict {
		e.vals = e.dictionaryPage(e.vals[:0], c.Type, v)
		zipped, err := e.compress(e.vals)
		if err != nil {
			return ch, err
		}
		h := &format.PageHeader{Type: format.DictionaryPage, UncompressedPageSize: int32(len(e.vals)), CompressedPageSize: int32(len(zipped))}
		h.DictionaryPageHeader.Set(format.DictionaryPageHeader{NumValues: int32(e.dict.len(c.Type)), Encoding: format.Plain, IsSorted: true})
		md.DictionaryPageOffset = pos
		if err := write(h, zipped); err != nil {
			return ch, err
		}
		md.EncodingStats = append(md.EncodingStats, format.PageEncodingStats{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1})
	}
	md.DataPageOffset = pos
	rowsPer := rowsPerPage(v)
	var pages int32
	var st bounds
	for r0, v0 := 0, 0; r0 < v.Rows(); {
		r1 := min(r0+rowsPer, v.Rows())
		n := 0
		for _, d := range v.Defs[r0:r1] {
			n += int(d)
		}
		v1 := v0 + n
		var err error
		if e.defs, err = levelEncoding.EncodeLevels(e.defs[:0], v.Defs[r0:r1]); err != nil {
			return ch, err
		}
		if e.vals, err = e.values(e.vals[:0], c.Type, v, useDict, v0, v1); err != nil {
			return ch, err
		}
		zipped, err := e.compress(e.vals)
		if err != nil {
			return ch, err
		}
		h := &format.PageHeader{Type: format.DataPageV2,
			UncompressedPageSize: int32(len(e.defs) + len(e.vals)), CompressedPageSize: int32(len(e.defs) + len(zipped))}
		dh := format.DataPageHeaderV2{NumValues: int32(r1 - r0), NumNulls: int32(r1 - r0 - n), NumRows: int32(r1 - r0),
			Encoding: pageEnc, DefinitionLevelsByteLength: int32(len(e.defs))}
		dh.IsCompressed.Set(md.Codec != format.Uncompressed)
		h.DataPageHeaderV2.Set(dh)
		ch.offIdx.PageLocations = append(ch.offIdx.PageLocations, format.PageLocation{Offset: pos, CompressedPageSize: 0, FirstRowIndex: int64(r0)})
		start := pos
		if err := write(h, e.defs, zipped); err != nil {
			return ch, err
		}
		ch.offIdx.PageLocations[len(ch.offIdx.PageLocations)-1].CompressedPageSize = int32(pos - start)
		lo, hi := e.pageBounds(c.Type, v, useDict, v0, v1)
		ch.colIdx.NullPages = append(ch.colIdx.NullPages, n == 0)
		ch.colIdx.NullCounts = append(ch.colIdx.NullCounts, int64(r1-r0-n))
		ch.colIdx.MinValues = append(ch.colIdx.MinValues, truncateMin(lo, c.Type))
		ch.colIdx.MaxValues = append(ch.colIdx.MaxValues, truncateMax(hi, c.Type))
		st.add(c.Type, lo, hi, n == 0)
		pages++
		r0, v0 = r1, v1
	}
	md.EncodingStats = append(md.EncodingStats, format.PageEncodingStats{PageType: format.DataPageV2, Encoding: pageEnc, Count: pages})
	ch.colIdx.BoundaryOrder = boundaryOrder(c.Type, ch.colIdx)
	md.Statistics.NullCount = int64(v.Rows() - v.count())
	ch.min, ch.max = st.min, st.max
	if st.min != nil && max(len(st.min), len(st.max)) <= maxStatisticsBytes {
		md.Statistics.MinValue, md.Statistics.MaxValue = st.min, st.max
		if c.Type != String {
			// Numbers sort the same signed as by their type, so the
			// deprecated fields, which older readers use, hold them too.
			md.Statistics.Min, md.Statistics.Max = st.min, st.max
		}
	}
	return ch, nil
}

// compress returns b compressed with the chunk's codec.
func (e *encoder) compress(b []byte) ([]byte, error) {
	if e.codec.CompressionCodec() == format.Uncompressed {
		return b, nil
	}
	var err error
	e.zip, err = e.codec.Encode(e.zip[:0], b)
	return e.zip, err
}

// rowsPerPage cuts v into pages of about pageBytes of values.
func rowsPerPage(v *Values) int {
	rows := v.Rows()
	if rows == 0 {
		return 1
	}
	var size int
	switch v.Type {
	case String:
		size = len(v.Bytes) + 4*v.count()
	case Bool:
		size = v.count() / 8
	default:
		size = 8 * v.count()
	}
	per := rows
	if size > 0 {
		per = int(int64(pageBytes) * int64(rows) / int64(size))
	}
	return min(max(per, 1), pageRows)
}

// dictionaryPage appends the PLAIN encoding of the dictionary's values.
func (e *encoder) dictionaryPage(b []byte, t Type, v *Values) []byte {
	if t == Int64 {
		for _, x := range e.dict.ints {
			b = binary.LittleEndian.AppendUint64(b, uint64(x))
		}
		return b
	}
	for _, i := range e.dict.strs {
		b = plain.AppendByteArray(b, v.StringAt(int(i)))
	}
	return b
}

// values appends the encoding of non-null values [v0, v1).
func (e *encoder) values(b []byte, t Type, v *Values, dict bool, v0, v1 int) ([]byte, error) {
	switch {
	case dict:
		return dictIndexEncoding.EncodeInt32(b, e.dict.idx[v0:v1])
	case t == String:
		return deltaBytesEncoding.EncodeByteArray(b, v.Bytes[v.Offsets[v0]:v.Offsets[v1]], v.Offsets[v0:v1+1])
	case t == Double:
		for _, x := range v.Doubles[v0:v1] {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
		return b, nil
	case t == Bool:
		e.bits = e.bits[:0]
		for i, x := range v.Bools[v0:v1] {
			if i%8 == 0 {
				e.bits = append(e.bits, 0)
			}
			if x {
				e.bits[i/8] |= 1 << (i % 8)
			}
		}
		return plainEncoding.EncodeBoolean(b, e.bits)
	}
	return deltaIntEncoding.EncodeInt64(b, v.Ints[v0:v1])
}

// pageBounds returns the PLAIN encodings of the smallest and largest of
// values [v0, v1), nil for none.
func (e *encoder) pageBounds(t Type, v *Values, dict bool, v0, v1 int) (lo, hi []byte) {
	if v0 == v1 {
		return nil, nil
	}
	if dict {
		a, z := e.dict.idx[v0], e.dict.idx[v0]
		for _, i := range e.dict.idx[v0+1 : v1] {
			a, z = min(a, i), max(z, i)
		}
		if t == Int64 {
			return plain.Int64(e.dict.ints[a]), plain.Int64(e.dict.ints[z])
		}
		// Bounds outlive v, whose memory the next row group reuses.
		return bytes.Clone(v.StringAt(int(e.dict.strs[a]))), bytes.Clone(v.StringAt(int(e.dict.strs[z])))
	}
	switch t {
	case String:
		a, z := v.StringAt(v0), v.StringAt(v0)
		for i := v0 + 1; i < v1; i++ {
			s := v.StringAt(i)
			if bytes.Compare(s, a) < 0 {
				a = s
			} else if bytes.Compare(s, z) > 0 {
				z = s
			}
		}
		return bytes.Clone(a), bytes.Clone(z)
	case Double:
		a, z, any := math.Inf(1), math.Inf(-1), false
		for _, x := range v.Doubles[v0:v1] {
			if x != x { // NaN has no place in an order
				continue
			}
			a, z, any = min(a, x), max(z, x), true
		}
		if !any {
			return nil, nil
		}
		// -0 and +0 compare equal: the format wants the bounds to cover
		// both.
		if a == 0 {
			a = math.Copysign(0, -1)
		}
		if z == 0 {
			z = 0
		}
		return plain.Double(a), plain.Double(z)
	case Bool:
		a, z := true, false
		for _, x := range v.Bools[v0:v1] {
			a, z = a && x, z || x
		}
		return plain.Boolean(a), plain.Boolean(z)
	}
	a, z := v.Ints[v0], v.Ints[v0]
	for _, x := range v.Ints[v0+1 : v1] {
		a, z = min(a, x), max(z, x)
	}
	return plain.Int64(a), plain.Int64(z)
}

// bounds accumulates a chunk's smallest and largest value over its pages.
type bounds struct{ min, max []byte }

func (b *bounds) add(t Type, lo, hi []byte, empty bool) {
	if empty || lo == nil {
		return
	}
	if b.min == nil || compareValues(t, lo, b.min) < 0 {
		b.min = lo
	}
	if b.max == nil || compareValues(t, hi, b.max) > 0 {
		b.max = hi
	}
}

// compareValues orders two PLAIN-encoded values of type t.
func compareValues(t Type, a, b []byte) int {
	switch t {
	case String:
		return bytes.Compare(a, b)
	case Double:
		return cmp.Compare(math.Float64frombits(binary.LittleEndian.Uint64(a)), math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case Bool:
		return cmp.Compare(a[0], b[0])
	}
	return cmp.Compare(int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b)))
}

// boundaryOrder tells whether the non-null pages' bounds ascend or
// descend, which lets readers search the page index.
func boundaryOrder(t Type, ci format.ColumnIndex) format.BoundaryOrder {
	asc, desc := true, true
	prev := -1
	for i, null := range ci.NullPages {
		if null {
			continue
		}
		if prev >= 0 {
			cmin := compareValues(t, ci.MinValues[prev], ci.MinValues[i])
			cmax := compareValues(t, ci.MaxValues[prev], ci.MaxValues[i])
			asc = asc && cmin <= 0 && cmax <= 0
			desc = desc && cmin >= 0 && cmax >= 0
		}
		prev = i
	}
	switch {
	case prev < 0:
		return format.Unordered
	case asc:
		return format.Ascending
	case desc:
		return format.Descending
	}
	return format.Unordered
}

// truncateMin shortens a string's lower bound for the page index: a
// prefix sorts before the value.
func truncateMin(b []byte, t Type) []byte {
	if b == nil {
		return []byte{}
	}
	if t != String || len(b) <= indexBoundBytes {
		return b
	}
	return b[:indexBoundBytes]
}

// truncateMax shortens a string's upper bound for the page index: a
// prefix with its last byte incremented sorts after the value (a prefix
// of 0xFF bytes cannot be, and stays whole).
func truncateMax(b []byte, t Type) []byte {
	if b == nil {
		return []byte{}
	}
	if t != String || len(b) <= indexBoundBytes {
		return b
	}
	out := append([]byte(nil), b[:indexBoundBytes]...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] < 0xFF {
			out[i]++
			return out[:i+1]
		}
	}
	return b
}
