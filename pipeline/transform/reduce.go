package transform

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unsafe"

	"sluice/pipeline/civil"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
)

// ReduceInput is everything one reduce task needs: its date, its range of
// virtual buckets, the columns of its file, and where every shard keeps the
// rows of those buckets (and the ids of the same buckets on other dates,
// which can hold an earlier copy of a key).
type ReduceInput struct {
	Date    civil.Date `json:"date"`
	Bucket  int        `json:"bucket"`
	Buckets int        `json:"buckets"`
	// Lo and Hi bound the virtual buckets [Lo, Hi) of this reduce.
	Lo      int          `json:"lo"`
	Hi      int          `json:"hi"`
	Codec   string       `json:"codec"`
	Columns []Column     `json:"columns"`
	Parts   []ReducePart `json:"parts"`
	Others  []ReduceIDs  `json:"others,omitempty"`
}

// ReducePart is one shard's rows of the reduce's date and buckets.
type ReducePart struct {
	Shard int    `json:"shard"`
	Key   string `json:"key"` // the rows file in scratch
	// ColMap maps the shard's column ids to indexes of Columns (-1: not
	// written).
	ColMap []int32 `json:"col_map"`
	// Index covers the buckets [Lo, Hi] boundaries of the rows file.
	Index intermediate.Index `json:"index"`
}

// ReduceIDs is one shard's ids, on another date, of the reduce's buckets.
type ReduceIDs struct {
	Shard int                `json:"shard"`
	Key   string             `json:"key"`
	Index intermediate.Index `json:"index"`
}

// ReduceOptions tunes ReduceBucket; the zero value is the default.
type ReduceOptions struct {
	// TempDir holds sorted runs when a bucket does not fit MemoryBytes
	// (default os.TempDir()).
	TempDir string
	// MemoryBytes is what a chunk of the bucket's rows may take in memory
	// (default DefaultReduceMemory). A bucket that needs more is reduced a
	// chunk of virtual buckets at a time, each chunk sorted into a run on
	// TempDir, and the runs merged: the same bytes either way.
	MemoryBytes int64
	// RowGroupBytes is the encoded size at which a Parquet row group ends
	// (default DefaultRowGroupBytes).
	RowGroupBytes int64
}

// DefaultReduceMemory is the default ReduceOptions.MemoryBytes.
const DefaultReduceMemory = 64 << 20

// DefaultRowGroupBytes is the default ReduceOptions.RowGroupBytes: row
// groups of about 128 MiB, as Athena, Trino and Spark read best.
const DefaultRowGroupBytes = 128 << 20

// rowOverhead is the estimated in-memory cost of one row beyond its
// intermediate bytes: its rowRef, its share of the dedupe map and of the
// sort.
const rowOverhead = 160

// BucketStats summarises one reduced bucket.
type BucketStats struct {
	Date       civil.Date `json:"date"`
	Bucket     int        `json:"bucket"`
	Rows       int64      `json:"rows"`       // rows written
	Duplicates int64      `json:"duplicates"` // rows read - rows written
	Bytes      int64      `json:"bytes"`      // size of the file
	// Chunks is how many pieces the bucket was reduced in (1: in memory;
	// more: sorted runs were spilled to local disk and merged).
	Chunks int `json:"chunks"`
}

// rowRef points at one row of a loaded intermediate.
type rowRef struct {
	shard, obj uint32
	line       uint64
	us         int64 // instant, microseconds
	off        int64 // local offset, seconds
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

// rowCmp is the output order: (utc timestamp, key). Keys are unique after
// deduplication, so the order is total and any sort gives the same file.
func rowCmp(a, b *rowRef) int {
	if c := cmp.Compare(a.us, b.us); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// partitionData is what decoding a file's rows needs: its columns and, per
// part, the map from the part's column ids to them.
type partitionData struct {
	cols    []Column
	tsCol   int // index of the local timestamp column, -1 if not output
	utcCol  int
	colMaps [][]int32 // per part: shard column id -> output index (-1: not output)
	// copyStrings is set when a row's bytes do not outlive the next row
	// (rows merged from spilled runs).
	copyStrings bool
	// dict marks the string columns to dictionary-encode (Parquet).
	dict []bool
}

func newPartitionData(cols []Column, parts []ReducePart) *partitionData {
	pd := &partitionData{cols: cols, tsCol: -1, utcCol: -1}
	for i, c := range cols {
		switch c.Type {
		case TypeLocalTime:
			pd.tsCol = i
		case TypeUTCTime:
			pd.utcCol = i
		}
	}
	for _, p := range parts {
		pd.colMaps = append(pd.colMaps, p.ColMap)
	}
	return pd
}

// ReduceBucket builds one output file from the map outputs: it reads the
// rows of its virtual buckets from every shard, keeps one row per key (the
// copy with the smallest (object key, line) of all dates of the run, see
// dedupe), sorts them by (utc timestamp, key) and writes the file (Parquet
// or CSV, as spec says) to w. A rerun gives the same bytes.
func ReduceBucket(ctx context.Context, scratch storage.Reader, spec Spec, in ReduceInput, w io.Writer, opts ReduceOptions) (BucketStats, error) {
	st := BucketStats{Date: in.Date, Bucket: in.Bucket}
	if err := spec.Validate(); err != nil {
		return st, fmt.Errorf("reduce %s bucket %d: %w", in.Date, in.Bucket, err)
	}
	if opts.MemoryBytes <= 0 {
		opts.MemoryBytes = DefaultReduceMemory
	}
	r := &reducer{ctx: ctx, scratch: scratch, in: in, read: intermediate.NewReader(in.Codec)}
	defer r.close()
	chunks := r.chunks(opts.MemoryBytes)
	st.Chunks = len(chunks)
	pd := newPartitionData(in.Columns, in.Parts)
	var next rowIter
	var rowsIn int64
	var dict *dictionaryChooser
	sampleHi := 0 // only Parquet files sample their rows
	if spec.Format == "parquet" {
		var sampleRows, fileRows int64
		sampleHi, sampleRows, fileRows = r.sampleBuckets()
		dict = newDictionaryChooser(pd, fileRows, sampleRows)
	}
	if len(chunks) == 1 {
		rows, keep, err := r.load(chunks[0][0], chunks[0][1])
		if err == nil {
			err = r.chooseEncodings(dict, rows, keep, sampleHi)
		}
		if err != nil {
			return st, fmt.Errorf("reduce %s bucket %d: %w", in.Date, in.Bucket, err)
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
				err = r.chooseEncodings(dict, rows, keep, sampleHi)
			}
			if err != nil {
				return st, fmt.Errorf("reduce %s bucket %d: %w", in.Date, in.Bucket, err)
			}
			rowsIn += int64(len(rows))
			st.Rows += int64(len(keep))
			f, err := r.tempFile(opts.TempDir)
			if err == nil {
				err = writeRun(f, rows, keep)
			}
			if err != nil {
				return st, fmt.Errorf("reduce %s bucket %d: %w", in.Date, in.Bucket, err)
			}
			runs = append(runs, f)
		}
		pd.copyStrings = true
		var err error
		if next, err = mergeRuns(runs); err != nil {
			return st, fmt.Errorf("reduce %s bucket %d: %w", in.Date, in.Bucket, err)
		}
	}
	st.Duplicates = rowsIn - st.Rows
	if dict != nil {
		pd.dict = dict.columns(st.Rows)
	}
	cw := &countingWriter{w: w}
	var err error
	if spec.Format == "csv" {
		err = writeCSV(cw, spec, pd, next)
	} else {
		err = writeParquet(cw, spec, pd, next, opts)
	}
	if err != nil {
		return st, fmt.Errorf("reduce %s bucket %d: write %s: %w", in.Date, in.Bucket, spec.Format, err)
	}
	st.Bytes = cw.n
	return st, nil
}

// FileExt is the extension of the job's output files.
func (s Spec) FileExt() string {
	switch {
	case s.Format == "csv" && s.Compression == "gzip":
		return "csv.gz"
	case s.Format == "csv":
		return "csv"
	}
	return "parquet"
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// reducer is the state of one ReduceBucket.
type reducer struct {
	ctx     context.Context
	scratch storage.Reader
	in      ReduceInput
	read    *intermediate.Reader
	idsBuf  []byte
	temps   []*os.File
}

func (r *reducer) close() {
	for _, f := range r.temps {
		f.Close()
		os.Remove(f.Name())
	}
}

func (r *reducer) tempFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "sluice-run-*")
	if err != nil {
		return nil, fmt.Errorf("create run file: %w", err)
	}
	r.temps = append(r.temps, f)
	return f, nil
}

// sampleBuckets is how many of the first virtual buckets (from Lo) hold
// the dictionary sample (see dictionaryChooser), with the rows read in
// them and in the whole file.
func (r *reducer) sampleBuckets() (buckets int, sampleRows, fileRows int64) {
	n := r.in.Hi - r.in.Lo
	per := make([]int64, n)
	for v := range n {
		for _, p := range r.in.Parts {
			_, _, _, k := p.Index.Span(v, v+1)
			per[v] += k
		}
		fileRows += per[v]
	}
	want := max(int64(sampleShare*float64(fileRows)), minSample)
	for v, k := range per {
		sampleRows += k
		if sampleRows >= want {
			return v + 1, sampleRows, fileRows
		}
	}
	return n, sampleRows, fileRows
}

// chooseEncodings shows a chunk's kept rows in the sample's buckets to the
// dictionary chooser (nil: not Parquet).
func (r *reducer) chooseEncodings(d *dictionaryChooser, rows []rowRef, keep []int32, sampleHi int) error {
	if d == nil {
		return nil
	}
	for _, i := range keep {
		row := &rows[i]
		if intermediate.VBucket(unsafe.Slice(unsafe.StringData(row.id), len(row.id)))-r.in.Lo < sampleHi {
			if err := d.addRow(row); err != nil {
				return err
			}
		}
	}
	return nil
}

// chunks cuts the virtual buckets [Lo, Hi) into consecutive ranges (offsets
// from Lo) whose rows fit budget in memory; a single bucket is never cut.
func (r *reducer) chunks(budget int64) [][2]int {
	n := r.in.Hi - r.in.Lo
	var out [][2]int
	start, size := 0, int64(0)
	for v := 0; v < n; v++ {
		var need int64
		for _, p := range r.in.Parts {
			_, _, raw, rows := p.Index.Span(v, v+1)
			need += raw + rows*rowOverhead
		}
		if size > 0 && size+need > budget {
			out = append(out, [2]int{start, v})
			start, size = v, 0
		}
		size += need
	}
	return append(out, [2]int{start, n})
}

// load reads the rows of buckets [a, b) (offsets from Lo) of every part and
// returns them with the indexes of the rows kept, in output order.
func (r *reducer) load(a, b int) ([]rowRef, []int32, error) {
	var total int64
	for _, p := range r.in.Parts {
		_, _, _, rows := p.Index.Span(a, b)
		total += rows
	}
	rows := make([]rowRef, 0, total)
	for file, p := range r.in.Parts {
		sp := intermediate.SpanOf(p.Key, p.Index, a, b)
		data, err := r.read.Load(r.ctx, r.scratch, sp, nil)
		if err != nil {
			return nil, nil, err
		}
		for len(data) > 0 {
			row, rest, err := intermediate.ParseRow(data)
			if err != nil {
				return nil, nil, fmt.Errorf("read %s: %w", p.Key, err)
			}
			rows = append(rows, rowRef{
				shard: uint32(p.Shard), obj: uint32(row.Obj), line: row.Line, us: row.US, off: row.Off,
				id: unsafe.String(unsafe.SliceData(row.Key), len(row.Key)), fields: row.Fields, file: int32(file),
			})
			data = rest
		}
		if err := r.ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
	keep, err := r.dedupe(rows, a, b)
	return rows, keep, err
}

// dedupe keeps, for every key, the copy with the smallest (shard, object,
// line), i.e. the smallest (object key, line), since shards are contiguous
// runs of objects in key order. Copies of the key that landed on other dates
// of the run count too: when one of them is smaller, the key is dropped
// here and kept there. It returns the kept rows sorted by (utc timestamp,
// key).
func (r *reducer) dedupe(rows []rowRef, a, b int) ([]int32, error) {
	best := make(map[string]int32, len(rows))
	for i := range rows {
		row := &rows[i]
		j, ok := best[row.id]
		if !ok || ordLess(row.shard, row.obj, row.line, rows[j].shard, rows[j].obj, rows[j].line) {
			best[row.id] = int32(i)
		}
	}
	for _, o := range r.in.Others {
		data, err := r.read.Load(r.ctx, r.scratch, intermediate.SpanOf(o.Key, o.Index, a, b), r.idsBuf)
		if err != nil {
			return nil, err
		}
		r.idsBuf = data // the next ids span reuses the memory
		for len(data) > 0 {
			id, rest, err := intermediate.ParseID(data)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", o.Key, err)
			}
			data = rest
			j, ok := best[string(id.Key)]
			if ok && ordLess(uint32(o.Shard), uint32(id.Obj), id.Line, rows[j].shard, rows[j].obj, rows[j].line) {
				delete(best, string(id.Key))
			}
		}
	}
	// Sort (timestamp, row) pairs, side by side in memory, and look at the
	// rows' keys only for equal timestamps: the same order as rowCmp, at a
	// fraction of the cache misses.
	type sortKey struct {
		us int64
		i  int32
	}
	keys := make([]sortKey, 0, len(best))
	for _, i := range best {
		keys = append(keys, sortKey{rows[i].us, i})
	}
	slices.SortFunc(keys, func(x, y sortKey) int {
		if x.us != y.us {
			return cmp.Compare(x.us, y.us)
		}
		return strings.Compare(rows[x.i].id, rows[y.i].id)
	})
	keep := make([]int32, len(keys))
	for j, k := range keys {
		keep[j] = k.i
	}
	return keep, nil
}
