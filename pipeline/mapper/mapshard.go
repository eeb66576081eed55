package mapper

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/valyala/fastjson"

	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/iocount"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// Options tune MapShard; the zero value is the default.
type Options struct {
	// TempDir holds the rows waiting for upload (default: the system's
	// temporary folder).
	TempDir string
	// BufferBytes is how many bytes of rows wait in memory before they are
	// sorted into a run on local disk (default DefaultBuffer).
	BufferBytes int64
	// Filtered, when set, is called with each line the job's where
	// leaves out (a preview shows them).
	Filtered func(FilteredLine)
}

// DefaultBuffer is the default Options.BufferBytes.
const DefaultBuffer = 32 << 20

// MapShard reads the shard's objects and writes into dir (a folder of
// scratch, one per shard) the intermediates of every local date that got
// rows, grouped by virtual bucket (see pipeline/intermediate), the shard's
// quarantine, and last its manifest, which is the shard's commit marker.
// Memory is bounded: one object is read at a time, and rows beyond
// opts.BufferBytes go to sorted runs on local disk.
//
// It is idempotent: a retry first removes the old manifest, then overwrites
// the same keys and deletes any other object left in the folder, so the
// same inputs always leave the same objects. Content problems in the input
// are quarantined, never returned; errors are storage, context or
// local-disk failures, which are worth a retry.
func MapShard(ctx context.Context, in storage.Reader, scratch storage.Bucket, dir string, spec transform.Spec, w civil.Window, shard transform.Shard, opts Options) (*Manifest, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("map shard %d: %w", shard.Index, err)
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("map shard %d: %w", shard.Index, err)
	}
	dir = normPrefix(dir)
	if err := scratch.Delete(ctx, dir+manifestName); err != nil {
		return nil, fmt.Errorf("map shard %d: delete old manifest: %w", shard.Index, err)
	}
	m, err := newMapper(spec, w, intermediateCodec(scratch.Location()), opts)
	if err != nil {
		return nil, fmt.Errorf("map shard %d: %w", shard.Index, err)
	}
	defer m.close()
	m.stats.Shard = shard.Index
	for i, obj := range shard.Objects {
		if err := m.readObject(ctx, in, i, obj); err != nil {
			return nil, fmt.Errorf("map shard %d: %w", shard.Index, err)
		}
	}
	man, err := m.publish(ctx, scratch, dir, shard.Index, w)
	if err != nil {
		return nil, fmt.Errorf("map shard %d: %w", shard.Index, err)
	}
	return man, nil
}

// mapper is the per-shard state; it is used by one goroutine.
type mapper struct {
	repaired          []byte // the current line with its bytes that are not UTF-8 replaced
	spec              transform.Spec
	opts              Options
	codec             string
	drop              []string
	zone              *zoneCache
	startDay, endDay  int64
	objDays           []int64 // local days of the current object's valid events
	flat              flattener
	parser            fastjson.Parser   // only to describe invalid lines as before
	colIDs            map[string]uint32 // source path -> shard column id
	colPaths          []string
	pins              []column.Type // by column id: the pinned type (transform.Spec.Columns), or noPin
	succ              []uint32      // by column id + 1: the column id + 1 that last followed it
	fields            []byte        // encoded fields of the current row
	nfields           int
	rowCols           []uint32 // (column id, kind) pairs of the current row
	idBuf, tsBuf      []byte
	out               *intermediate.Writer
	kinds             [][]uint8 // by day - startDay: per column id, the kinds seen
	quarantine        *os.File
	quarantineGz      *gzip.Writer
	stats             Stats
	in                *bufio.Reader
	gz                gzip.Reader
	lines             *bufio.Reader
	long              []byte
	curSource, curKey string
	exprs             *rowExprs // nil: the job has no where or derive
}

// intermediateCodec chooses how intermediates are stored from the scratch
// bucket's location. In a local scratch (a folder, or memory) they are not
// compressed: compression took 15 % of the map's CPU to save bytes that
// only go to the page cache, and the whole job measured about 5 % faster
// without it. In a remote store the bytes cross the network, so they are
// S2-compressed.
func intermediateCodec(location string) string {
	if strings.HasPrefix(location, "file://") || strings.HasPrefix(location, "mem://") {
		return intermediate.CodecNone
	}
	return intermediate.CodecS2
}

func newMapper(spec transform.Spec, w civil.Window, codec string, opts Options) (*mapper, error) {
	loc, err := civil.LoadZone(spec.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("time_zone: %w", err)
	}
	if opts.BufferBytes <= 0 {
		opts.BufferBytes = DefaultBuffer
	}
	m := &mapper{
		spec:     spec,
		opts:     opts,
		codec:    codec,
		drop:     spec.Drop,
		zone:     newZoneCache(loc),
		startDay: w.Start.Days(),
		endDay:   w.End.Days(),
		colIDs:   map[string]uint32{},
		in:       bufio.NewReaderSize(nil, 256<<10),
		lines:    bufio.NewReaderSize(nil, 1<<20),
		out:      intermediate.NewWriter(opts.TempDir, codec, opts.BufferBytes),
		stats:    Stats{Rows: map[civil.Date]int64{}, Quarantined: map[string]int64{}},
	}
	m.kinds = make([][]uint8, m.endDay-m.startDay+1)
	m.flat = flattener{m: m, tsField: spec.TimestampField, drop: spec.Drop, idName: spec.DedupeKey}
	if err := m.initExprs(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *mapper) close() {
	m.out.Close()
	if m.quarantine != nil {
		m.quarantine.Close()
		os.Remove(m.quarantine.Name())
	}
}

func (m *mapper) readObject(ctx context.Context, in storage.Reader, objIdx int, obj transform.Object) error {
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
	comp := &iocount.Reader{R: rc}
	m.in.Reset(comp)
	defer func() { m.stats.BytesCompressed += comp.N }()
	if err := m.gz.Reset(m.in); err != nil {
		if comp.Err != nil {
			return fmt.Errorf("read %s: %w", obj.Key, comp.Err)
		}
		if err == io.EOF { // zero-byte object: nothing to read
			return nil
		}
		m.stats.LinesRead++
		return m.quarantineLine(0, ReasonCorruptObject, err.Error(), nil)
	}
	m.gz.Multistream(true)
	plain := &iocount.Reader{R: &m.gz}
	m.lines.Reset(plain)
	defer func() { m.stats.BytesUncompressed += plain.N }()

	var lineNo int64
	for {
		line, tooLong, rerr := m.nextLine()
		if rerr != nil && rerr != io.EOF {
			if comp.Err != nil {
				return fmt.Errorf("read %s: %w", obj.Key, comp.Err)
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
	raw := line
	if !utf8.Valid(line) {
		m.repaired = repairUTF8(m.repaired[:0], line)
		line = m.repaired
		m.stats.RepairedUTF8++
	}
	r := m.readLine(line)
	if r.hasDay && !slices.Contains(m.objDays, r.day) { // an object's events span few days
		m.objDays = append(m.objDays, r.day)
	}
	switch {
	case r.reason != "":
		return m.quarantineLine(lineNo, r.reason, r.detail, raw)
	case r.outside:
		m.stats.OutsideWindow++
		return nil
	}
	if m.exprs != nil {
		if keep, err := m.evalExprs(lineNo, raw, r.us); !keep {
			return err
		}
	}
	return m.writeRow(r.day, objIdx, lineNo, r.us, r.off, r.id)
}

// repairUTF8 appends line to dst with every byte that does not belong to
// a valid UTF-8 sequence replaced by U+FFFD, one per byte, as Go's
// encoding/json decodes such strings. Parquet and CSV readers refuse a
// file with invalid STRING bytes, so one bad line must not reach a file;
// bytes outside JSON strings make the line invalid JSON either way, so
// repairing the whole line repairs exactly its strings (and member names).
func repairUTF8(dst, line []byte) []byte {
	for len(line) > 0 {
		r, n := utf8.DecodeRune(line)
		if r == utf8.RuneError && n == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, line[:n]...)
		}
		line = line[n:]
	}
	return dst
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
	} else if m.flat.mismatch != "" {
		r.reason, r.detail = ReasonTypeMismatch, m.flat.mismatch
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
	dates := make([]civil.Date, len(m.objDays))
	for i, d := range m.objDays {
		dates[i] = civil.FromDays(d)
	}
	if m.stats.ObjectDates == nil {
		m.stats.ObjectDates = map[string][]civil.Date{}
	}
	m.stats.ObjectDates[key] = dates
}

// writeRow adds the current row (its fields are in m.fields) to the
// intermediates of its local day.
func (m *mapper) writeRow(day int64, objIdx int, lineNo, us, off int64, id []byte) error {
	kinds := m.kinds[day-m.startDay]
	for i := 0; i < len(m.rowCols); i += 2 {
		col, kind := m.rowCols[i], m.rowCols[i+1]
		if int(col) >= len(kinds) {
			kinds = append(kinds, make([]uint8, int(col)+1-len(kinds))...)
		}
		kinds[col] |= 1 << kind
	}
	m.kinds[day-m.startDay] = kinds
	if err := m.out.AddRow(day, id, uint64(objIdx), uint64(lineNo), us, off, m.nfields, m.fields); err != nil {
		return err
	}
	m.stats.Rows[civil.FromDays(day)]++
	return nil
}
