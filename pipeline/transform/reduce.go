package transform

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

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
	// Published are keys files (intermediate.KeysWriter) of partitions the
	// run does not rebuild: a key they hold is already published there,
	// and this file leaves it out.
	Published []ReduceIDs `json:"published,omitempty"`
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

// rowIter yields the rows of a partition in output order; it returns nil at
// the end. A row is valid until the next call.
type rowIter func() (*rowRef, error)

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

// ReduceIO is where a reduce reads and writes.
type ReduceIO struct {
	Scratch storage.Reader // the map's intermediates
	// Published holds the keys files of ReduceInput.Published (the job's
	// output); nil when there are none.
	Published storage.Reader
	File      io.Writer // the output file
	// Keys, when set, receives the keys file of the output file
	// (intermediate.KeysWriter).
	Keys io.Writer
}

// ReduceBucket builds one output file from the map outputs: it reads the
// rows of its virtual buckets from every shard, keeps one row per key (the
// copy with the smallest (object key, line) of all dates of the run, unless
// a partition the run does not rebuild already holds the key, see dedupe),
// sorts them by (utc timestamp, key) and writes the file (Parquet or CSV,
// as spec says) to rw.File, and its keys to rw.Keys. A rerun gives the
// same bytes.
func ReduceBucket(ctx context.Context, rw ReduceIO, spec Spec, in ReduceInput, opts ReduceOptions) (BucketStats, error) {
	st := BucketStats{Date: in.Date, Bucket: in.Bucket}
	if err := spec.Validate(); err != nil {
		return st, fmt.Errorf("reduce %s bucket %d: %w", in.Date, in.Bucket, err)
	}
	if opts.MemoryBytes <= 0 {
		opts.MemoryBytes = DefaultReduceMemory
	}
	w := rw.File
	r := &reducer{ctx: ctx, scratch: rw.Scratch, published: rw.Published, in: in, read: intermediate.NewReader(in.Codec)}
	if rw.Keys != nil {
		r.keys = intermediate.NewKeysWriter(rw.Keys)
	}
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
		if err := r.writeKeys(rows, keep); err != nil {
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
			if err == nil {
				err = r.writeKeys(rows, keep) // chunks are in bucket order
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
	if r.keys != nil {
		if err := r.keys.Close(); err != nil {
			return st, fmt.Errorf("reduce %s bucket %d: keys: %w", in.Date, in.Bucket, err)
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
