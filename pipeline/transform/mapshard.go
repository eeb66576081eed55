package transform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/valyala/fastjson"

	"sluice/pipeline/storage"
)

// Quarantine reasons.
const (
	ReasonInvalidJSON      = "invalid_json"
	ReasonNotObject        = "not_object"
	ReasonMissingKey       = "missing_key"
	ReasonEmptyKey         = "empty_key"
	ReasonBadKey           = "bad_key" // key present but not a string
	ReasonMissingTimestamp = "missing_timestamp"
	ReasonBadTimestamp     = "bad_timestamp"
	ReasonLineTooLong      = "line_too_long"
	ReasonCorruptObject    = "corrupt_object" // not gzip, or the stream breaks off
)

// MaxLineBytes is the longest line MapShard parses; longer lines are
// quarantined (with their first QuarantineRawBytes bytes).
const MaxLineBytes = 32 << 20

// QuarantineRawBytes caps the raw text kept for an over-long line.
const QuarantineRawBytes = 64 << 10

// MapStats summarises one mapped shard.
type MapStats struct {
	Shard             int              `json:"shard"`
	Objects           int              `json:"objects"`
	LinesRead         int64            `json:"lines_read"` // non-blank lines (plus one per corrupt object)
	Rows              map[Date]int64   `json:"rows"`       // rows written per local date, before dedupe
	OutsideWindow     int64            `json:"outside_window"`
	Quarantined       map[string]int64 `json:"quarantined"` // by reason
	BytesCompressed   int64            `json:"bytes_compressed"`
	BytesUncompressed int64            `json:"bytes_uncompressed"`
	// ObjectDates lists, per object key, the local dates of its valid
	// events, inside the window or not. Bookmarks use it to know which
	// partitions an object feeds (see pipeline/bookmark).
	ObjectDates map[string][]Date `json:"object_dates,omitempty"`
}

// RowsTotal is the sum of Rows.
func (s MapStats) RowsTotal() int64 {
	var n int64
	for _, v := range s.Rows {
		n += v
	}
	return n
}

// QuarantinedTotal is the sum of Quarantined.
func (s MapStats) QuarantinedTotal() int64 {
	var n int64
	for _, v := range s.Quarantined {
		n += v
	}
	return n
}

// Dates lists the dates that got rows, in order.
func (s MapStats) Dates() []Date {
	ds := slices.Collect(maps.Keys(s.Rows))
	slices.SortFunc(ds, Date.Compare)
	return ds
}

// Add accumulates o into s (Shard is left alone).
func (s *MapStats) Add(o MapStats) {
	s.Objects += o.Objects
	s.LinesRead += o.LinesRead
	s.OutsideWindow += o.OutsideWindow
	s.BytesCompressed += o.BytesCompressed
	s.BytesUncompressed += o.BytesUncompressed
	if s.Rows == nil {
		s.Rows = map[Date]int64{}
	}
	for d, n := range o.Rows {
		s.Rows[d] += n
	}
	if s.Quarantined == nil {
		s.Quarantined = map[string]int64{}
	}
	if len(o.ObjectDates) > 0 && s.ObjectDates == nil {
		s.ObjectDates = map[string][]Date{}
	}
	for k, ds := range o.ObjectDates {
		s.ObjectDates[k] = ds
	}
	for r, n := range o.Quarantined {
		s.Quarantined[r] += n
	}
}

// QuarantineRecord is one line of the quarantine (NDJSON).
type QuarantineRecord struct {
	Source string `json:"source"`
	Key    string `json:"key"`
	Line   int64  `json:"line"` // 1-based physical line in the decompressed object; 0 for the object itself
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	Raw    string `json:"raw"`
}

// MapShard reads the shard's objects and writes, under scratchPrefix in
// scratch, one rows and one ids object per local date that got rows, the
// shard's quarantine, and last its manifest (see the format notes in
// intermediate.go). Memory is bounded per object: rows stream through
// S2 temporary files (compressed when scratch is remote, see localStore).
//
// It is idempotent: a retry first removes the old manifest, then overwrites
// the same keys and deletes any other object left in the shard's folder, so
// the same inputs always leave the same objects. Content problems in the
// input are quarantined, never returned; errors are storage, context or
// local-disk failures, which are worth a retry.
func MapShard(ctx context.Context, in storage.Reader, scratch storage.Bucket, scratchPrefix string, spec Spec, w Window, shard Shard) (MapStats, error) {
	if err := spec.Validate(); err != nil {
		return MapStats{}, fmt.Errorf("map shard %d: %w", shard.Index, err)
	}
	if err := w.Validate(); err != nil {
		return MapStats{}, fmt.Errorf("map shard %d: %w", shard.Index, err)
	}
	prefix := normPrefix(scratchPrefix)
	if err := scratch.Delete(ctx, manifestKey(prefix, shard.Index)); err != nil {
		return MapStats{}, fmt.Errorf("map shard %d: delete old manifest: %w", shard.Index, err)
	}
	m, err := newMapper(spec, w)
	if err != nil {
		return MapStats{}, fmt.Errorf("map shard %d: %w", shard.Index, err)
	}
	defer m.close()
	m.compressTemp = !localStore(scratch.Location())
	m.stats.Shard = shard.Index
	for i, obj := range shard.Objects {
		if err := m.readObject(ctx, in, i, obj); err != nil {
			return MapStats{}, fmt.Errorf("map shard %d: %w", shard.Index, err)
		}
	}
	if err := m.publish(ctx, scratch, prefix, shard.Index, w); err != nil {
		return MapStats{}, fmt.Errorf("map shard %d: %w", shard.Index, err)
	}
	return m.stats, nil
}

// mapper is the per-shard state; it is used by one goroutine.
type mapper struct {
	spec              Spec
	drop              []string
	zone              *zoneCache
	startDay, endDay  int64
	objDays           []int64 // local days of the current object's valid events
	flat              flattener
	parser            fastjson.Parser   // only to describe invalid lines as before
	colIDs            map[string]uint32 // source path -> shard column id
	colPaths          []string
	shape             []uint32 // column ids of the previous record's fields, in order
	fields            []byte   // encoded fields of the current row
	nfields           int
	rowCols           []uint32 // (column id, kind) pairs of the current row
	rec               []byte   // encoded record
	nbuf              [binary.MaxVarintLen64]byte
	tmp               []byte
	idBuf, tsBuf      []byte
	buckets           []*dateBucket // by day - startDay
	compressTemp      bool          // S2-compress the rows and ids (see localStore)
	quarantine        *tempSink
	quarantineGz      *gzip.Writer
	stats             MapStats
	in                *bufio.Reader
	gz                gzip.Reader
	lines             *bufio.Reader
	long              []byte
	curSource, curKey string
}

type dateBucket struct {
	date  Date
	types []uint8 // per shard column id: kinds seen; 0 = not yet defined in this file
	rows  int64
	bytes int64 // uncompressed length of the rows stream, magic excluded
	data  *tempSink
	ids   *tempSink
}

// tempSink is an S2 stream into a local temporary file.
type tempSink struct {
	f *os.File
	w *s2.Writer
}

// newTempSink starts an S2 stream. Uncompressed, it still is an S2 stream
// (of stored blocks, each with its checksum), so readers need not know.
func newTempSink(magic string, compress bool) (*tempSink, error) {
	f, err := os.CreateTemp("", "sluice-map-*")
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	opts := []s2.WriterOption{s2.WriterConcurrency(1)}
	if !compress {
		opts = append(opts, s2.WriterUncompressed())
	}
	t := &tempSink{f: f, w: s2.NewWriter(f, opts...)}
	if magic != "" {
		if _, err := t.w.Write([]byte(magic)); err != nil {
			t.discard()
			return nil, err
		}
	}
	return t, nil
}

// finish flushes the stream and rewinds the file for upload.
func (t *tempSink) finish() error {
	if t.w != nil {
		if err := t.w.Close(); err != nil {
			return fmt.Errorf("flush temp file: %w", err)
		}
		t.w = nil
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind temp file: %w", err)
	}
	return nil
}

func (t *tempSink) discard() {
	if t == nil || t.f == nil {
		return
	}
	t.f.Close()
	os.Remove(t.f.Name())
	t.f = nil
}

// localStore tells a scratch bucket on this machine (a folder, or memory)
// from a remote object store by its location. Intermediates in a local
// scratch are not compressed: S2 took 15 % of the map's CPU to save bytes
// that only go to the page cache, and the whole job measured about 5 %
// faster without it. In a remote store the bytes cross the network, so
// they stay compressed.
func localStore(location string) bool {
	return strings.HasPrefix(location, "file://") || strings.HasPrefix(location, "mem://")
}

func newMapper(spec Spec, w Window) (*mapper, error) {
	loc, err := time.LoadLocation(spec.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("load time zone: %w", err)
	}
	m := &mapper{
		spec:     spec,
		drop:     spec.Drop,
		zone:     newZoneCache(loc),
		startDay: w.Start.days(),
		endDay:   w.End.days(),
		colIDs:   map[string]uint32{},
		in:       bufio.NewReaderSize(nil, 256<<10),
		lines:    bufio.NewReaderSize(nil, 1<<20),
		stats:    MapStats{Rows: map[Date]int64{}, Quarantined: map[string]int64{}},
	}
	m.buckets = make([]*dateBucket, m.endDay-m.startDay+1)
	m.flat = flattener{m: m, tsField: spec.TimestampField, drop: spec.Drop, idName: spec.DedupeKey}
	return m, nil
}

func (m *mapper) close() {
	for _, b := range m.buckets {
		if b != nil {
			b.data.discard()
			b.ids.discard()
		}
	}
	m.quarantine.discard()
}

// countingReader counts bytes and remembers the first non-EOF error of the
// underlying reader, to tell a storage failure (retry) from a corrupt
// object (quarantine).
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

func (m *mapper) readObject(ctx context.Context, in storage.Reader, objIdx int, obj Object) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, err := in.Get(ctx, obj.Key)
	if err != nil {
		return fmt.Errorf("get %s: %w", obj.Key, err)
	}
	defer rc.Close()
	m.stats.Objects++
	m.curSource, m.curKey = obj.Source, obj.Key
	m.objDays = m.objDays[:0]
	defer m.noteObjectDates(obj.Key)
	comp := &countingReader{r: rc}
	m.in.Reset(comp)
	defer func() { m.stats.BytesCompressed += comp.n }()
	if err := m.gz.Reset(m.in); err != nil {
		if comp.err != nil {
			return fmt.Errorf("read %s: %w", obj.Key, comp.err)
		}
		if err == io.EOF { // zero-byte object: nothing to read
			return nil
		}
		m.stats.LinesRead++
		return m.quarantineLine(0, ReasonCorruptObject, err.Error(), nil)
	}
	m.gz.Multistream(true)
	plain := &countingReader{r: &m.gz}
	m.lines.Reset(plain)
	defer func() { m.stats.BytesUncompressed += plain.n }()

	var lineNo int64
	for {
		line, tooLong, rerr := m.nextLine()
		if rerr != nil && rerr != io.EOF {
			if comp.err != nil {
				return fmt.Errorf("read %s: %w", obj.Key, comp.err)
			}
			// The stream breaks off: what was read of the last line is kept
			// with the reason, and the rest of the object is lost.
			m.stats.LinesRead++
			return m.quarantineLine(lineNo+1, ReasonCorruptObject, rerr.Error(), line)
		}
		if len(line) > 0 || rerr == nil {
			lineNo++
			if lineNo&8191 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := m.processLine(objIdx, lineNo, line, tooLong); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// nextLine returns the next line without its terminator. The slice is valid
// until the next call. A line longer than MaxLineBytes is cut to
// QuarantineRawBytes and flagged.
func (m *mapper) nextLine() ([]byte, bool, error) {
	line, err := m.lines.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		m.long = append(m.long[:0], line...)
		tooLong := false
		for err == bufio.ErrBufferFull {
			line, err = m.lines.ReadSlice('\n')
			if !tooLong && len(m.long)+len(line) > MaxLineBytes {
				tooLong = true
				m.long = m.long[:QuarantineRawBytes]
			}
			if !tooLong {
				m.long = append(m.long, line...)
			}
		}
		line = m.long
		if tooLong {
			return line, true, err
		}
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	return line, false, err
}

func (m *mapper) processLine(objIdx int, lineNo int64, line []byte, tooLong bool) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil
	}
	m.stats.LinesRead++
	if tooLong {
		return m.quarantineLine(lineNo, ReasonLineTooLong, fmt.Sprintf("longer than %d bytes", MaxLineBytes), line)
	}
	r := m.readLine(line)
	if r.hasDay && !slices.Contains(m.objDays, r.day) { // an object's events span few days
		m.objDays = append(m.objDays, r.day)
	}
	switch {
	case r.reason != "":
		return m.quarantineLine(lineNo, r.reason, r.detail, line)
	case r.outside:
		m.stats.OutsideWindow++
		return nil
	}
	b, err := m.bucket(r.day)
	if err != nil {
		return err
	}
	return m.writeRow(b, objIdx, lineNo, r.us, r.off, r.id)
}

// lineResult is what a line becomes: a quarantine record (reason set), an
// event outside the window, or a row whose fields are in m.fields.
type lineResult struct {
	reason, detail string
	hasDay         bool // the timestamp was valid: day is the event's local day
	outside        bool
	day, us, off   int64
	id             []byte
}

// readLine parses and checks a (trimmed, non-blank) line and, for a row,
// leaves its encoded fields in m.fields, m.rowCols and m.nfields.
func (m *mapper) readLine(line []byte) lineResult {
	isObject, ok := m.flat.scan(line)
	if !ok {
		return lineResult{reason: ReasonInvalidJSON, detail: m.invalidJSONDetail(line)}
	}
	if !isObject {
		return lineResult{reason: ReasonNotObject}
	}
	unescaped := false
	idv := lookup(&m.flat.id, m.spec.DedupeKey, &unescaped)
	if idv == nil || idv.typ == jsonNull {
		return lineResult{reason: ReasonMissingKey, detail: m.spec.DedupeKey}
	}
	if idv.typ != jsonString {
		return lineResult{reason: ReasonBadKey, detail: m.spec.DedupeKey + " is " + jsonTypeNames[idv.typ]}
	}
	m.idBuf = appendUnescaped(m.idBuf[:0], idv.raw)
	if len(m.idBuf) == 0 {
		return lineResult{reason: ReasonEmptyKey, detail: m.spec.DedupeKey}
	}
	tsv := lookup(&m.flat.ts, m.spec.TimestampField, &unescaped)
	if tsv == nil || tsv.typ == jsonNull {
		return lineResult{reason: ReasonMissingTimestamp, detail: m.spec.TimestampField}
	}
	if tsv.typ != jsonString {
		return lineResult{reason: ReasonBadTimestamp, detail: m.spec.TimestampField + " is " + jsonTypeNames[tsv.typ]}
	}
	m.tsBuf = appendUnescaped(m.tsBuf[:0], tsv.raw)
	us, ok := parseTimestamp(m.tsBuf)
	if !ok {
		return lineResult{reason: ReasonBadTimestamp, detail: m.spec.TimestampField}
	}
	off := m.zone.offset(floorDiv(us, 1e6))
	r := lineResult{hasDay: true, day: floorDiv(us+off*1e6, 86400e6), us: us, off: off, id: m.idBuf}
	if r.day < m.startDay || r.day > m.endDay {
		r.outside = true
		return r
	}
	if m.flat.unknown { // a new source path: read the line again, giving it an id
		m.flat.create = true
		m.flat.scan(line)
		m.flat.create = false
	}
	if m.flat.badNumber {
		r.reason, r.detail = ReasonInvalidJSON, "bad number"
	}
	return r
}

// invalidJSONDetail describes why a line is not JSON in fastjson's words,
// as the quarantine always has.
func (m *mapper) invalidJSONDetail(line []byte) string {
	if _, err := m.parser.ParseBytes(line); err != nil {
		return err.Error()
	}
	return "invalid JSON"
}

func (m *mapper) noteObjectDates(key string) {
	if len(m.objDays) == 0 {
		return
	}
	slices.Sort(m.objDays)
	dates := make([]Date, len(m.objDays))
	for i, d := range m.objDays {
		dates[i] = dateFromDays(d)
	}
	if m.stats.ObjectDates == nil {
		m.stats.ObjectDates = map[string][]Date{}
	}
	m.stats.ObjectDates[key] = dates
}

func (m *mapper) bucket(day int64) (*dateBucket, error) {
	i := day - m.startDay
	if b := m.buckets[i]; b != nil {
		return b, nil
	}
	data, err := newTempSink(rowsMagic, m.compressTemp)
	if err != nil {
		return nil, err
	}
	ids, err := newTempSink(idsMagic, m.compressTemp)
	if err != nil {
		data.discard()
		return nil, err
	}
	b := &dateBucket{date: dateFromDays(day), data: data, ids: ids}
	m.buckets[i] = b
	return b, nil
}

func (m *mapper) writeRow(b *dateBucket, objIdx int, lineNo, us, off int64, id []byte) error {
	rec := m.rec[:0]
	for i := 0; i < len(m.rowCols); i += 2 {
		col, kind := m.rowCols[i], m.rowCols[i+1]
		if int(col) >= len(b.types) {
			b.types = append(b.types, make([]uint8, int(col)+1-len(b.types))...)
		}
		if b.types[col] == 0 {
			p := m.colPaths[col]
			rec = append(rec, tagColumn)
			rec = binary.AppendUvarint(rec, uint64(col))
			rec = binary.AppendUvarint(rec, uint64(len(p)))
			rec = append(rec, p...)
		}
		b.types[col] |= 1 << kind
	}
	rec = append(rec, tagRow)
	rec = binary.AppendUvarint(rec, uint64(objIdx))
	rec = binary.AppendUvarint(rec, uint64(lineNo))
	rec = binary.AppendVarint(rec, us)
	rec = binary.AppendVarint(rec, off)
	rec = binary.AppendUvarint(rec, uint64(len(id)))
	rec = append(rec, id...)
	nlen := binary.PutUvarint(m.nbuf[:], uint64(m.nfields))
	rec = binary.AppendUvarint(rec, uint64(nlen+len(m.fields)))
	rec = append(rec, m.nbuf[:nlen]...)
	rec = append(rec, m.fields...)
	m.rec = rec
	b.bytes += int64(len(rec))
	if _, err := b.data.w.Write(rec); err != nil {
		return fmt.Errorf("write temp rows: %w", err)
	}
	ids := m.tmp[:0]
	ids = binary.AppendUvarint(ids, uint64(len(id)))
	ids = append(ids, id...)
	ids = binary.AppendUvarint(ids, uint64(objIdx))
	ids = binary.AppendUvarint(ids, uint64(lineNo))
	m.tmp = ids
	if _, err := b.ids.w.Write(ids); err != nil {
		return fmt.Errorf("write temp ids: %w", err)
	}
	b.rows++
	m.stats.Rows[b.date]++
	return nil
}

// validNumber checks the JSON number grammar, which fastjson does not
// enforce (it would accept "1.2.3" or "nan").
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

func (m *mapper) quarantineLine(lineNo int64, reason, detail string, raw []byte) error {
	m.stats.Quarantined[reason]++
	if m.quarantine == nil {
		f, err := os.CreateTemp("", "sluice-quarantine-*")
		if err != nil {
			return fmt.Errorf("create temp file: %w", err)
		}
		m.quarantine = &tempSink{f: f}
		m.quarantineGz, _ = gzip.NewWriterLevel(f, gzip.BestSpeed)
	}
	rec, err := json.Marshal(QuarantineRecord{
		Source: m.curSource, Key: m.curKey, Line: lineNo, Reason: reason, Detail: detail, Raw: string(raw),
	})
	if err != nil {
		return fmt.Errorf("encode quarantine record: %w", err)
	}
	rec = append(rec, '\n')
	if _, err := m.quarantineGz.Write(rec); err != nil {
		return fmt.Errorf("write quarantine: %w", err)
	}
	return nil
}

// publish uploads the shard's outputs, removes leftovers of earlier
// attempts, and writes the manifest last.
func (m *mapper) publish(ctx context.Context, scratch storage.Bucket, prefix string, shard int, w Window) error {
	keep := map[string]bool{}
	man := shardManifest{Version: 1, Shard: shard, Objects: m.stats.Objects, Window: w.String(), Stats: m.stats}
	for _, b := range m.buckets {
		if b == nil {
			continue
		}
		for _, up := range []struct {
			key  string
			sink *tempSink
		}{{rowsKey(prefix, shard, b.date), b.data}, {idsKey(prefix, shard, b.date), b.ids}} {
			if err := up.sink.finish(); err != nil {
				return err
			}
			if err := scratch.Put(ctx, up.key, up.sink.f); err != nil {
				return fmt.Errorf("put %s: %w", up.key, err)
			}
			keep[up.key] = true
		}
		cols := make(map[string]uint8, len(b.types))
		for id, mask := range b.types {
			if mask != 0 {
				cols[m.colPaths[id]] = mask
			}
		}
		man.Dates = append(man.Dates, manifestDate{Date: b.date, Rows: b.rows, Bytes: b.bytes, Columns: cols})
	}
	if m.quarantine != nil {
		if err := m.quarantineGz.Close(); err != nil {
			return fmt.Errorf("flush quarantine: %w", err)
		}
		if err := m.quarantine.finish(); err != nil {
			return err
		}
		key := quarantineKey(prefix, shard)
		if err := scratch.Put(ctx, key, m.quarantine.f); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		keep[key] = true
	}
	dir := shardDir(prefix, shard)
	var stale []string
	err := scratch.List(ctx, dir, func(oi storage.ObjectInfo) error {
		if !keep[oi.Key] {
			stale = append(stale, oi.Key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, k := range stale {
		if err := scratch.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete %s: %w", k, err)
		}
	}
	body, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	key := manifestKey(prefix, shard)
	if err := scratch.Put(ctx, key, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}
