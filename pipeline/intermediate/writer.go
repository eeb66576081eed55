package intermediate

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/klauspost/compress/s2"
)

// Writer groups one map task's row records by date and virtual bucket in
// bounded memory: records wait in one buffer, and when it outgrows the
// budget every date's records are sorted by virtual bucket and written to
// a local run; Finish then writes each date's files by concatenating, for
// each virtual bucket in turn, that bucket's part of every run. Runs are
// sorted by virtual bucket only, so the concatenation is a sequential read
// of each run, not a merge.
//
// A Writer is used by one goroutine. Close removes its temporary files.
type Writer struct {
	dir    string
	codec  string
	budget int64

	// blocks hold the buffered records; records never span blocks, and
	// blocks are kept for reuse after a spill. used counts their bytes.
	blocks  [][]byte
	free    [][]byte // emptied blocks, reused before new ones are made
	used    int64
	entries int // buffered, over all groups
	groups  map[int64]*group
	temps   []*os.File
	segs    [2]*s2.Writer // the rows' and the ids' segment streams
}

// group is one date's records.
type group struct {
	entries []entry // records in the arena, in arrival order
	runs    []*run
	rows    int64
}

type entry struct {
	off uint32 // in its block
	n   uint32
	blk uint16
	vb  uint16
}

// blockSize is the unit the record buffer grows by: appending into fixed
// blocks copies each record once, where one growing slice would copy it
// again at every growth.
const blockSize = 1 << 20

const entryBytes = 12

// run is one spill of a date's records, sorted by virtual bucket: at[v] is
// where bucket v starts in each file, count[v] the records before it.
type run struct {
	rows, ids         *os.File
	rowsAt, idsAt     [VBuckets + 1]int64
	count             [VBuckets + 1]int64
	rowsRead, idsRead *bufio.Reader
}

// NewWriter returns a writer whose temporary files go to dir ("" is the
// system's temporary folder) and which holds up to budget bytes of records
// in memory.
func NewWriter(dir, codec string, budget int64) *Writer {
	return &Writer{dir: dir, codec: codec, budget: max(budget, 1<<20), groups: map[int64]*group{}}
}

// Add appends a row record (see the package comment) for the date numbered
// date (any number the caller uses consistently, e.g. days since the epoch),
// placed by its dedupe key.
func (w *Writer) Add(date int64, key, rec []byte) error {
	b, err := w.reserve(len(rec))
	if err != nil {
		return err
	}
	return w.added(date, key, append(b, rec...))
}

// AddRow is Add for a row given by its parts, encoded straight into the
// buffer: fields are the row's n encoded fields.
func (w *Writer) AddRow(date int64, key []byte, obj, line uint64, us, off int64, n int, fields []byte) error {
	var nb [binary.MaxVarintLen64]byte
	nlen := binary.PutUvarint(nb[:], uint64(n))
	b, err := w.reserve(len(key) + len(fields) + 6*binary.MaxVarintLen64)
	if err != nil {
		return err
	}
	b = AppendRowHeader(b, key, obj, line, us, off)
	b = binary.AppendUvarint(b, uint64(nlen+len(fields)))
	b = append(b, nb[:nlen]...)
	return w.added(date, key, append(b, fields...))
}

// reserve makes room for a record of up to n bytes at the end of the last
// block and returns that block, for the record to be appended to.
func (w *Writer) reserve(n int) ([]byte, error) {
	if n > 1<<32-1 {
		return nil, fmt.Errorf("intermediate: record of %d bytes", n)
	}
	if k := len(w.blocks); k == 0 || cap(w.blocks[k-1])-len(w.blocks[k-1]) < n {
		if k >= 1<<16 {
			return nil, fmt.Errorf("intermediate: record buffer of over 64K blocks")
		}
		var b []byte
		if f := len(w.free); f > 0 && cap(w.free[f-1]) >= n {
			b, w.free = w.free[f-1][:0], w.free[:f-1]
		} else {
			b = make([]byte, 0, max(blockSize, n))
		}
		w.blocks = append(w.blocks, b)
	}
	return w.blocks[len(w.blocks)-1], nil
}

// added records that the last block now ends with one more record.
func (w *Writer) added(date int64, key, block []byte) error {
	k := len(w.blocks) - 1
	start := len(w.blocks[k])
	w.blocks[k] = block
	g := w.groups[date]
	if g == nil {
		g = &group{}
		w.groups[date] = g
	}
	n := len(block) - start
	g.entries = append(g.entries, entry{off: uint32(start), n: uint32(n), blk: uint16(k), vb: uint16(VBucket(key))})
	w.used += int64(n)
	w.entries++
	g.rows++
	if w.used+int64(w.entries)*entryBytes > w.budget {
		return w.spill()
	}
	return nil
}

func (w *Writer) record(e entry) []byte { return w.blocks[e.blk][e.off : e.off+e.n] }

// Rows is the number of records added for a date.
func (w *Writer) Rows(date int64) int64 {
	if g := w.groups[date]; g != nil {
		return g.rows
	}
	return 0
}

// Dates lists the dates that have records, in order.
func (w *Writer) Dates() []int64 {
	out := make([]int64, 0, len(w.groups))
	for d := range w.groups {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// sortByBucket returns the entries ordered by virtual bucket (stable) and
// the index of each bucket's first entry.
func sortByBucket(entries []entry) ([]entry, *[VBuckets + 1]int) {
	var start [VBuckets + 1]int
	for _, e := range entries {
		start[e.vb+1]++
	}
	for v := 1; v <= VBuckets; v++ {
		start[v] += start[v-1]
	}
	out := make([]entry, len(entries))
	next := start
	for _, e := range entries {
		out[next[e.vb]] = e
		next[e.vb]++
	}
	return out, &start
}

// spill writes every date's buffered records to a new run of that date.
func (w *Writer) spill() error {
	for _, d := range w.Dates() {
		g := w.groups[d]
		if len(g.entries) == 0 {
			continue
		}
		r, err := w.writeRun(g.entries)
		if err != nil {
			return err
		}
		g.runs = append(g.runs, r)
		g.entries = g.entries[:0]
	}
	// Keep a free list of the blocks for the next records, in order.
	w.free = append(w.free, w.blocks...)
	clear(w.blocks)
	w.blocks, w.used, w.entries = w.blocks[:0], 0, 0
	return nil
}

func (w *Writer) tempFile() (*os.File, error) {
	f, err := os.CreateTemp(w.dir, "sluice-map-*")
	if err != nil {
		return nil, fmt.Errorf("intermediate: create temp file: %w", err)
	}
	w.temps = append(w.temps, f)
	return f, nil
}

func (w *Writer) writeRun(entries []entry) (*run, error) {
	sorted, start := sortByBucket(entries)
	r := &run{}
	var err error
	if r.rows, err = w.tempFile(); err != nil {
		return nil, err
	}
	if r.ids, err = w.tempFile(); err != nil {
		return nil, err
	}
	rw, iw := bufio.NewWriterSize(r.rows, 64<<10), bufio.NewWriterSize(r.ids, 64<<10)
	var rowsAt, idsAt int64
	for v := 0; v < VBuckets; v++ {
		r.rowsAt[v], r.idsAt[v], r.count[v] = rowsAt, idsAt, int64(start[v])
		for _, e := range sorted[start[v]:start[v+1]] {
			rec := w.record(e)
			p, err := idsPrefixLen(rec)
			if err != nil {
				return nil, err
			}
			rw.Write(rec)
			iw.Write(rec[:p])
			rowsAt += int64(len(rec))
			idsAt += int64(p)
		}
	}
	r.rowsAt[VBuckets], r.idsAt[VBuckets], r.count[VBuckets] = rowsAt, idsAt, int64(len(sorted))
	if err := rw.Flush(); err != nil {
		return nil, fmt.Errorf("intermediate: write run: %w", err)
	}
	if err := iw.Flush(); err != nil {
		return nil, fmt.Errorf("intermediate: write run: %w", err)
	}
	for _, f := range []*os.File{r.rows, r.ids} {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("intermediate: rewind run: %w", err)
		}
	}
	r.rowsRead, r.idsRead = bufio.NewReaderSize(r.rows, 64<<10), bufio.NewReaderSize(r.ids, 64<<10)
	return r, nil
}

// Finish writes the rows and ids files of a date to rows and ids and
// returns their indexes. Each date is finished once.
func (w *Writer) Finish(date int64, rows, ids io.Writer) (rowsIx, idsIx Index, err error) {
	g := w.groups[date]
	if g == nil {
		return Index{}, Index{}, fmt.Errorf("intermediate: no records for date %d", date)
	}
	sorted, start := sortByBucket(g.entries)
	ro, iout := w.segmentOut(0, rows), w.segmentOut(1, ids)
	rowsIx, idsIx = newIndex(), newIndex()
	var count int64
	for v := 0; v < VBuckets; v++ {
		rowsIx.set(v, ro.at, ro.raw, count)
		idsIx.set(v, iout.at, iout.raw, count)
		for _, r := range g.runs {
			if err := ro.copyFrom(r.rowsRead, r.rowsAt[v+1]-r.rowsAt[v]); err != nil {
				return rowsIx, idsIx, err
			}
			if err := iout.copyFrom(r.idsRead, r.idsAt[v+1]-r.idsAt[v]); err != nil {
				return rowsIx, idsIx, err
			}
			count += r.count[v+1] - r.count[v]
		}
		for _, e := range sorted[start[v]:start[v+1]] {
			rec := w.record(e)
			p, err := idsPrefixLen(rec)
			if err != nil {
				return rowsIx, idsIx, err
			}
			if err := ro.write(rec); err != nil {
				return rowsIx, idsIx, err
			}
			if err := iout.write(rec[:p]); err != nil {
				return rowsIx, idsIx, err
			}
		}
		count += int64(start[v+1] - start[v])
		if err := ro.end(); err != nil {
			return rowsIx, idsIx, err
		}
		if err := iout.end(); err != nil {
			return rowsIx, idsIx, err
		}
	}
	rowsIx.set(VBuckets, ro.at, ro.raw, count)
	idsIx.set(VBuckets, iout.at, iout.raw, count)
	if count != g.rows {
		return rowsIx, idsIx, fmt.Errorf("intermediate: wrote %d records of date %d, want %d", count, date, g.rows)
	}
	return rowsIx, idsIx, nil
}

func (w *Writer) segmentOut(i int, out io.Writer) *segmentOut {
	if w.codec == CodecS2 && w.segs[i] == nil {
		w.segs[i] = s2.NewWriter(nil, s2.WriterConcurrency(1), s2.WriterBlockSize(256<<10))
	}
	return &segmentOut{codec: w.codec, seg: w.segs[i], out: out}
}

func newIndex() Index {
	return Index{Offset: make([]int64, VBuckets+1), Raw: make([]int64, VBuckets+1), Rows: make([]int64, VBuckets+1)}
}

func (ix Index) set(v int, at, raw, rows int64) { ix.Offset[v], ix.Raw[v], ix.Rows[v] = at, raw, rows }

// Close removes the writer's temporary files.
func (w *Writer) Close() {
	for _, f := range w.temps {
		f.Close()
		os.Remove(f.Name())
	}
	w.temps, w.groups, w.blocks, w.free = nil, nil, nil, nil
}

// segmentOut writes the segments of one file: at is the stored bytes
// written, raw the record bytes. With CodecS2 every segment is its own S2
// stream, started on its first byte.
type segmentOut struct {
	codec   string
	seg     *s2.Writer
	out     io.Writer
	at, raw int64
	open    bool
	buf     []byte
}

func (s *segmentOut) Write(p []byte) (int, error) {
	n, err := s.out.Write(p)
	s.at += int64(n)
	return n, err
}

func (s *segmentOut) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	s.raw += int64(len(p))
	if s.codec != CodecS2 {
		_, err := s.Write(p)
		return err
	}
	if !s.open {
		s.seg.Reset(s)
		s.open = true
	}
	_, err := s.seg.Write(p)
	return err
}

func (s *segmentOut) copyFrom(r *bufio.Reader, n int64) error {
	for n > 0 {
		if cap(s.buf) == 0 {
			s.buf = make([]byte, 64<<10)
		}
		chunk := s.buf[:min(int64(len(s.buf)), n)]
		if _, err := io.ReadFull(r, chunk); err != nil {
			return fmt.Errorf("intermediate: read run: %w", err)
		}
		if err := s.write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

// end closes the current segment.
func (s *segmentOut) end() error {
	if !s.open {
		return nil
	}
	s.open = false
	return s.seg.Close()
}
