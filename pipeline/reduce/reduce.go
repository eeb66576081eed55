package reduce

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/klauspost/compress/s2"

	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/iocount"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// SliceInput is everything one reduce task needs: its date, its slice of
// the date's virtual buckets, the date's columns and their groups, and
// where every shard keeps the rows of those buckets (and the ids of the
// same buckets on other dates, which can hold an earlier copy of a key).
type SliceInput struct {
	Date  civil.Date `json:"date"`
	Slice int        `json:"slice"`
	// Lo and Hi bound the virtual buckets [Lo, Hi) of this slice.
	Lo      int             `json:"lo"`
	Hi      int             `json:"hi"`
	Codec   string          `json:"codec"`
	Columns []column.Column `json:"columns"`
	// Groups are the first column of each column group (Groups[0] is 0):
	// the reduce writes one sorted run per group, and each is encoded by
	// its own task.
	Groups []int `json:"groups"`
	// Shards are every shard's rows of the slice (JSON "parts", as older
	// releases named them, so that a slice input written by one decodes).
	Shards []ShardRows `json:"parts"`
	Others []ShardIDs  `json:"others,omitempty"`
	// Published are keys files (intermediate.KeysWriter) of partitions the
	// run does not rebuild: a key they hold is already published there,
	// and this slice leaves it out.
	Published []ShardIDs `json:"published,omitempty"`
}

// ShardRows is one shard's rows of the slice's date and buckets.
type ShardRows struct {
	Shard int    `json:"shard"`
	Key   string `json:"key"` // the rows file in scratch
	// ColMap maps the shard's column ids to indexes of Columns (-1: not
	// written).
	ColMap []int32 `json:"col_map"`
	// Index covers the buckets [Lo, Hi] boundaries of the rows file.
	Index intermediate.Index `json:"index"`
}

// ShardIDs is one shard's ids, on another date, of the slice's buckets.
type ShardIDs struct {
	Shard int                `json:"shard"`
	Key   string             `json:"key"`
	Index intermediate.Index `json:"index"`
}

// Options tunes Slice and EncodeFragment; the zero value is
// the default.
type Options struct {
	// TempDir holds sorted runs when a slice does not fit MemoryBytes
	// (default os.TempDir()).
	TempDir string
	// MemoryBytes is what a chunk of a slice's rows may take in memory
	// (default DefaultMemory). The job cuts slices to fit it; a
	// slice that needs more (one huge virtual bucket) is reduced a chunk
	// of virtual buckets at a time, each chunk sorted into a run on
	// TempDir, and the runs merged: the same bytes either way.
	MemoryBytes int64
	// RowGroupBytes is the encoded size a Parquet row group aims at
	// (default DefaultRowGroupBytes).
	RowGroupBytes int64
}

// DefaultMemory is the default Options.MemoryBytes.
const DefaultMemory = 64 << 20

// DefaultRowGroupBytes is the default Options.RowGroupBytes: row
// groups of about 64 MiB, which Athena, Trino, Spark and DuckDB read well.
// Each row group has its own dictionaries, so smaller ones repeat the
// values of a day's users in each (a 1 GB day cut into three row groups
// was 18 % larger); larger ones would make one column group of one row
// group outgrow an encode task's memory.
const DefaultRowGroupBytes = 64 << 20

// rowOverhead is the estimated in-memory cost of one row beyond its
// intermediate bytes: its rowRef, its share of the dedupe map and of the
// sort.
const rowOverhead = 160

// RowCost is what the rows of a slice cost in a reduce task's memory:
// their record bytes and a fixed overhead per row. The job cuts slices by
// it.
func RowCost(raw, rows int64) int64 { return raw + rows*rowOverhead }

// SliceStats summarises one reduced slice.
type SliceStats struct {
	Date       civil.Date `json:"date"`
	Slice      int        `json:"slice"`
	Rows       int64      `json:"rows"`       // rows kept
	Duplicates int64      `json:"duplicates"` // rows read - rows kept
	// RunBytes are the bytes of each column group's run; Values and
	// StringBytes, per column, the non-null values the runs hold and the
	// bytes of those that are strings.
	RunBytes    []int64 `json:"run_bytes"`
	Values      []int64 `json:"values"`
	StringBytes []int64 `json:"string_bytes"`
	// Chunks is how many pieces the slice was reduced in (1: in memory;
	// more: sorted runs were spilled to local disk and merged).
	Chunks int `json:"chunks"`
	// KeysIndex is the index of the keys file written to IO.Keys.
	KeysIndex intermediate.Index `json:"-"`
}

// rowIter yields rows in output order; it returns nil at the end. A row
// is valid until the next call.
type rowIter func() (*rowRef, error)

// rowRef points at one row of a loaded intermediate.
type rowRef struct {
	shard, obj uint32
	line       uint64
	us         int64  // instant, microseconds
	off        int64  // local offset, seconds
	fp         uint64 // intermediate.KeyFingerprint of id
	vb         uint16 // intermediate.VBucket of id
	id         string
	fields     []byte // starts with the field count
	file       int32  // the part it came from: its ColMap decodes the fields
}

func ordLess(as, ao uint32, al uint64, bs, bo uint32, bl uint64) bool {
	if as != bs {
		return as < bs
	}
	if ao != bo {
		return ao < bo
	}
	return al < bl
}

// rowCmp is the output order: (utc timestamp, key fingerprint, key). Keys
// are unique after deduplication, so the order is total and any sort
// gives the same run; the encode tasks merge runs of several slices by
// (timestamp, fingerprint) alone.
func rowCmp(a, b *rowRef) int {
	if c := cmp.Compare(a.us, b.us); c != 0 {
		return c
	}
	if c := cmp.Compare(a.fp, b.fp); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// IO is where a reduce reads and writes.
type IO struct {
	Scratch storage.Reader // the map's intermediates
	// Published holds the keys files of SliceInput.Published (the job's
	// output); nil when there are none.
	Published storage.Reader
	// Runs receive the sorted run of each column group.
	Runs []io.Writer
	// Keys, when set, receives the keys file of the slice's rows
	// (intermediate.KeysWriter).
	Keys io.Writer
}

// Slice reads the rows of its virtual buckets from every shard,
// keeps one row per key (the copy with the smallest (object key, line) of
// all dates of the run, unless a partition the run does not rebuild
// already holds the key, see dedupe), sorts them by (utc timestamp, key
// fingerprint, key) and writes, for each column group, a sorted run of
// the rows with that group's fields converted to their columns' types
// (intermediate.AppendSortedRow), and the keys of the rows to rw.Keys. A
// rerun gives the same bytes.
func Slice(ctx context.Context, rw IO, spec transform.Spec, in SliceInput, opts Options) (SliceStats, error) {
	st := SliceStats{Date: in.Date, Slice: in.Slice}
	fail := func(err error) (SliceStats, error) {
		return st, fmt.Errorf("reduce %s slice %d: %w", in.Date, in.Slice, err)
	}
	if err := spec.Validate(); err != nil {
		return fail(err)
	}
	if len(in.Groups) == 0 || in.Groups[0] != 0 || len(rw.Runs) != len(in.Groups) {
		return fail(fmt.Errorf("%d column groups %v for %d runs", len(in.Groups), in.Groups, len(rw.Runs)))
	}
	if opts.MemoryBytes <= 0 {
		opts.MemoryBytes = DefaultMemory
	}
	r := &reducer{ctx: ctx, scratch: rw.Scratch, published: rw.Published, in: in, read: intermediate.NewReader(in.Codec)}
	if rw.Keys != nil {
		r.keys = intermediate.NewKeysWriter(rw.Keys)
	}
	defer r.close()
	sp, err := newSplitter(in, rw.Runs)
	if err != nil {
		return fail(err)
	}
	chunks := r.chunks(opts.MemoryBytes)
	st.Chunks = len(chunks)
	var next rowIter
	var rowsIn int64
	if len(chunks) == 1 {
		rows, keep, err := r.load(chunks[0][0], chunks[0][1])
		if err == nil {
			err = r.writeKeys(rows, keep)
		}
		if err != nil {
			return fail(err)
		}
		rowsIn, st.Rows = int64(len(rows)), int64(len(keep))
		next = func() (*rowRef, error) {
			if len(keep) == 0 {
				return nil, nil
			}
			row := &rows[keep[0]]
			keep = keep[1:]
			return row, nil
		}
	} else {
		var runs []*os.File
		for _, c := range chunks {
			rows, keep, err := r.load(c[0], c[1])
			if err == nil {
				err = r.writeKeys(rows, keep) // chunks are in bucket order
			}
			if err != nil {
				return fail(err)
			}
			rowsIn += int64(len(rows))
			st.Rows += int64(len(keep))
			f, err := r.tempFile(opts.TempDir)
			if err == nil {
				err = writeRun(f, rows, keep)
			}
			if err != nil {
				return fail(err)
			}
			runs = append(runs, f)
		}
		if next, err = mergeRuns(runs); err != nil {
			return fail(err)
		}
	}
	if r.keys != nil {
		if err := r.keys.Close(); err != nil {
			return fail(fmt.Errorf("keys: %w", err))
		}
		st.KeysIndex = r.keys.Index()
	}
	st.Duplicates = rowsIn - st.Rows
	for {
		row, err := next()
		if err != nil {
			return fail(err)
		}
		if row == nil {
			break
		}
		if err := sp.add(row, r.in.Shards[row.file].ColMap); err != nil {
			return fail(err)
		}
	}
	if st.RunBytes, err = sp.close(); err != nil {
		return fail(err)
	}
	st.Values, st.StringBytes = sp.values, sp.bytes
	return st, nil
}

// splitter writes each row's fields to the run of their column's group,
// converted to the column's type.
type splitter struct {
	cols    []column.Column
	group   []int // column index -> group
	runs    []*runWriter
	scratch [][]byte // per group: the row's fields, without their count
	counts  []int
	// values and bytes count each column's non-null values and their
	// string bytes, so that an encode task sizes its columns up front.
	values, bytes []int64
	rows          int64
}

// runWriter is one group's run: buffered, S2-compressed when the
// intermediates are (remote scratch), counted.
type runWriter struct {
	cw  *iocount.Writer
	buf *bufio.Writer
	s2w *s2.Writer
	rec []byte
}

func newSplitter(in SliceInput, ws []io.Writer) (*splitter, error) {
	sp := &splitter{cols: in.Columns, group: make([]int, len(in.Columns)), scratch: make([][]byte, len(in.Groups)), counts: make([]int, len(in.Groups)),
		values: make([]int64, len(in.Columns)), bytes: make([]int64, len(in.Columns))}
	for g, first := range in.Groups {
		end := len(in.Columns)
		if g+1 < len(in.Groups) {
			end = in.Groups[g+1]
		}
		if first >= end && len(in.Columns) > 0 {
			return nil, fmt.Errorf("column group %d starts at %d, the next at %d", g, first, end)
		}
		for c := first; c < end; c++ {
			sp.group[c] = g
		}
	}
	for _, w := range ws {
		rw := &runWriter{cw: &iocount.Writer{W: w}}
		var dst io.Writer = rw.cw
		if in.Codec == intermediate.CodecS2 {
			rw.s2w = s2.NewWriter(rw.cw, s2.WriterConcurrency(1))
			dst = rw.s2w
		}
		rw.buf = bufio.NewWriterSize(dst, 64<<10)
		sp.runs = append(sp.runs, rw)
	}
	return sp, nil
}

// add splits one row; colMap decodes its fields.
func (sp *splitter) add(r *rowRef, colMap []int32) error {
	for g := range sp.scratch {
		sp.scratch[g], sp.counts[g] = sp.scratch[g][:0], 0
	}
	fr := intermediate.NewFields(r.fields)
	for {
		id, kind, ok := fr.Next()
		if !ok {
			break
		}
		if uint(id) >= uint(len(colMap)) {
			return intermediate.ErrCorrupt
		}
		c := colMap[id]
		if c < 0 || kind == intermediate.KindNull {
			fr.Skip(kind)
			continue
		}
		g := sp.group[c]
		start := len(sp.scratch[g])
		b, err := appendConverted(binary.AppendUvarint(sp.scratch[g], uint64(c)), &fr, kind, sp.cols[c])
		if err != nil {
			return fmt.Errorf("column %s: %w", sp.cols[c].Name, err)
		}
		sp.scratch[g] = b
		sp.counts[g]++
		sp.values[c]++
		if sp.cols[c].Type == column.TypeString {
			// The field is uvarint column, kind, uvarint length, bytes.
			f := b[start:]
			_, n := binary.Uvarint(f)
			l, _ := binary.Uvarint(f[n+1:])
			sp.bytes[c] += int64(l)
		}
	}
	if err := fr.Err(); err != nil {
		return err
	}
	sp.rows++
	for g, w := range sp.runs {
		// The record (intermediate.AppendSortedRow) written in two pieces,
		// its header and its fields, not copied into one first.
		var count [binary.MaxVarintLen64]byte
		n := binary.PutUvarint(count[:], uint64(sp.counts[g]))
		w.rec = intermediate.AppendSortedHeader(w.rec[:0], r.us, r.off, r.fp, n+len(sp.scratch[g]))
		w.rec = append(w.rec, count[:n]...)
		if _, err := w.buf.Write(w.rec); err != nil {
			return err
		}
		if _, err := w.buf.Write(sp.scratch[g]); err != nil {
			return err
		}
	}
	return nil
}

// appendConverted appends a field of the given kind, read from fr, as a
// value of col's type (kind byte and payload): what the table's schema
// makes of a narrower value (an integer in a double column, anything in a
// string column).
func appendConverted(dst []byte, fr *intermediate.Fields, kind byte, col column.Column) ([]byte, error) {
	text := func(f func([]byte) []byte) []byte {
		dst = append(dst, intermediate.KindString)
		at := len(dst)
		dst = f(append(dst, 0)) // a one-byte length for now
		if n := len(dst) - at - 1; n < 0x80 {
			dst[at] = byte(n)
		} else {
			v := append([]byte(nil), dst[at+1:]...)
			dst = append(binary.AppendUvarint(dst[:at], uint64(n)), v...)
		}
		return dst
	}
	switch kind {
	case intermediate.KindBool:
		t := fr.Bool()
		switch col.Type {
		case column.TypeString:
			return text(func(b []byte) []byte { return strconv.AppendBool(b, t) }), fr.Err()
		case column.TypeBool:
			b := byte(0)
			if t {
				b = 1
			}
			return append(dst, intermediate.KindBool, b), fr.Err()
		}
	case intermediate.KindInt:
		n := fr.Int()
		switch col.Type {
		case column.TypeString:
			return text(func(b []byte) []byte { return strconv.AppendInt(b, n, 10) }), fr.Err()
		case column.TypeDouble:
			return binary.LittleEndian.AppendUint64(append(dst, intermediate.KindDouble), math.Float64bits(float64(n))), fr.Err()
		case column.TypeBigint:
			return binary.AppendVarint(append(dst, intermediate.KindInt), n), fr.Err()
		}
	case intermediate.KindDouble:
		raw := fr.DoubleBits()
		switch col.Type {
		case column.TypeString:
			f := math.Float64frombits(binary.LittleEndian.Uint64(raw))
			return text(func(b []byte) []byte { return strconv.AppendFloat(b, f, 'g', -1, 64) }), fr.Err()
		case column.TypeDouble:
			return append(append(dst, intermediate.KindDouble), raw...), fr.Err()
		}
	case intermediate.KindString:
		s := fr.Bytes()
		if col.Type == column.TypeString {
			dst = binary.AppendUvarint(append(dst, intermediate.KindString), uint64(len(s)))
			return append(dst, s...), fr.Err()
		}
	default:
		return dst, intermediate.ErrCorrupt
	}
	return dst, fmt.Errorf("a %s value in a %s column: %w", intermediate.KindName(kind), col.Type, intermediate.ErrCorrupt)
}

// close flushes the runs and returns their sizes.
func (sp *splitter) close() ([]int64, error) {
	sizes := make([]int64, len(sp.runs))
	for g, w := range sp.runs {
		err := w.buf.Flush()
		if err == nil && w.s2w != nil {
			err = w.s2w.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("write run: %w", err)
		}
		sizes[g] = w.cw.N
	}
	return sizes, nil
}

// AddColumnBytes adds to w, per output column, the bytes its fields take
// in data, row records whose column ids colMap maps to the columns; it
// returns the rows read. The job weighs column groups by it.
func AddColumnBytes(w []int64, data []byte, colMap []int32) (int64, error) {
	var rows int64
	for len(data) > 0 {
		row, rest, err := intermediate.ParseRow(data)
		if err != nil {
			return rows, err
		}
		data = rest
		rows++
		fr := intermediate.NewFields(row.Fields)
		for {
			start := fr.Len()
			id, kind, ok := fr.Next()
			if !ok {
				break
			}
			if uint(id) >= uint(len(colMap)) {
				return rows, intermediate.ErrCorrupt
			}
			fr.Skip(kind)
			if c := colMap[id]; c >= 0 {
				w[c] += int64(start - fr.Len())
			}
		}
		if err := fr.Err(); err != nil {
			return rows, err
		}
	}
	return rows, nil
}
