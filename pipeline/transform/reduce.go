package transform

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/klauspost/compress/s2"

	"sluice/pipeline/storage"
)

// ReduceOptions tunes ReducePartition; the zero value is the default.
type ReduceOptions struct {
	// Columns, when set, is the exact list of output columns (output names,
	// generated ones included), for example to keep CSV files of several
	// runs aligned. Names unknown to the run are written as null strings.
	// Parquet still orders them by name (parquet-go sorts a Group); CSV uses
	// the given order. When empty, CSV gets every column of the run sorted
	// by name, Parquet the columns seen for the date sorted by name.
	Columns []string
	// RowGroupRows caps the rows per Parquet row group (default 500 000).
	RowGroupRows int64
	// TempDir holds the file being written and any spilled rows (default
	// os.TempDir()).
	TempDir string
	// MemoryBytes is what the date's rows may take in memory (default
	// DefaultReduceMemory). A date that needs more is deduplicated in
	// hash partitions and sorted in runs spilled to TempDir, then merged;
	// the output is the same bytes either way.
	MemoryBytes int64
}

// DefaultReduceMemory is the default ReduceOptions.MemoryBytes: with the
// Parquet writer's page buffers on disk, it keeps a reduce well under a
// 512 MiB worker whatever the size of the date.
const DefaultReduceMemory = 192 << 20

// rowOverhead is the estimated in-memory cost of one row beyond its
// intermediate bytes: its rowRef, its share of the dedupe map and of the
// sort.
const rowOverhead = 160

// PartitionStats summarises one reduced partition.
type PartitionStats struct {
	Date       Date        `json:"date"`
	Rows       int64       `json:"rows"`       // rows written
	Duplicates int64       `json:"duplicates"` // copies collapsed (rows read - rows written)
	Bytes      int64       `json:"bytes"`      // size of the published file
	File       string      `json:"file"`       // key of the published file; "" when the date had no rows
	Columns    []string    `json:"columns"`
	Collisions []Collision `json:"collisions,omitempty"`
	Removed    []string    `json:"removed,omitempty"` // stale files deleted from the partition
	// SpillRuns is the number of sorted runs written to local disk when the
	// date did not fit in ReduceOptions.MemoryBytes (0: reduced in memory).
	SpillRuns int `json:"spill_runs,omitempty"`
}

// outCol is one output column.
type outCol struct {
	name string
	typ  colType
}

// rowRef points at one row of a loaded intermediate.
type rowRef struct {
	shard, obj uint32
	line       uint64
	us         int64 // instant, microseconds
	off        int64 // local offset, seconds
	id         string
	fields     []byte // starts with the field count
	file       int32
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

// partitionData is one date's rows, loaded from every shard.
type partitionData struct {
	cols    []outCol
	tsCol   int // index of the local timestamp column, -1 if not output
	utcCol  int
	colMaps [][]int32 // per loaded file: shard column id -> output index (-1: not output)
	rows    []rowRef
	bufs    [][]byte // keep the loaded files alive (rows point into them)
	// copyStrings is set when a row's bytes do not outlive the next row
	// (rows merged from spilled runs).
	copyStrings bool
}

func newPartitionData(cols []outCol) (*partitionData, map[string]int32) {
	pd := &partitionData{cols: cols, tsCol: -1, utcCol: -1}
	index := map[string]int32{}
	for i, c := range cols {
		index[c.name] = int32(i)
		switch c.typ {
		case typeLocalTime:
			pd.tsCol = i
		case typeUTCTime:
			pd.utcCol = i
		}
	}
	return pd, index
}

// rowCmp is the output order: (utc timestamp, key). Keys are unique after
// deduplication, so the order is total and any sort gives the same file.
func rowCmp(a, b *rowRef) int {
	if c := cmp.Compare(a.us, b.us); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// ReducePartition builds the output partition of one date from the map
// outputs of shards 0..shardCount-1 (all must be mapped), then publishes it:
// the file is written to a _staging/ key, copied to
// year=Y/month=M/date=D/part-00000.<ext>, and every other file in that
// partition folder is deleted (dynamic partition overwrite). Rows are sorted
// by (utc timestamp, key), so a rerun gives a byte-identical file.
//
// A date without rows publishes nothing and empties its partition folder.
// Memory: the date's intermediate rows are held in memory when they fit in
// opts.MemoryBytes, and otherwise spilled to opts.TempDir (see spill.go).
func ReducePartition(ctx context.Context, scratch storage.Reader, scratchPrefix string, out storage.Bucket, spec Spec, date Date, shardCount int, opts ReduceOptions) (PartitionStats, error) {
	st := PartitionStats{Date: date}
	if err := spec.Validate(); err != nil {
		return st, fmt.Errorf("reduce %s: %w", date, err)
	}
	prefix := normPrefix(scratchPrefix)
	mans, err := readManifests(ctx, scratch, prefix, shardCount)
	if err != nil {
		return st, fmt.Errorf("reduce %s: %w", date, err)
	}
	cols, names, coll := outputColumns(spec, mans, date, opts.Columns)
	st.Collisions = coll

	var rowsIn, bytesIn int64
	for _, m := range mans {
		for _, md := range m.Dates {
			if md.Date == date {
				rowsIn += md.Rows
				bytesIn += md.Bytes
			}
		}
	}
	if rowsIn == 0 {
		removed, err := clearPartition(ctx, out, date, "")
		st.Removed = removed
		if err != nil {
			return st, fmt.Errorf("reduce %s: %w", date, err)
		}
		return st, nil
	}
	budget := opts.MemoryBytes
	if budget <= 0 {
		budget = DefaultReduceMemory
	}
	var pd *partitionData
	var next rowIter
	var kept int64
	if bytesIn+rowsIn*rowOverhead <= budget {
		pd, err = loadPartition(ctx, scratch, prefix, mans, date, cols, names)
		if err != nil {
			return st, fmt.Errorf("reduce %s: %w", date, err)
		}
		keep, err := dedupe(ctx, scratch, prefix, mans, date, pd.rows)
		if err != nil {
			return st, fmt.Errorf("reduce %s: %w", date, err)
		}
		kept = int64(len(keep))
		next = func() (*rowRef, error) {
			if len(keep) == 0 {
				return nil, nil
			}
			r := &pd.rows[keep[0]]
			keep = keep[1:]
			return r, nil
		}
	} else {
		sp := &spill{ctx: ctx, scratch: scratch, prefix: prefix, mans: mans, date: date, budget: budget, dir: opts.TempDir}
		defer sp.close()
		pd, next, kept, err = sp.run(cols, names)
		st.SpillRuns = sp.runs
		if err != nil {
			return st, fmt.Errorf("reduce %s: %w", date, err)
		}
	}
	st.Rows = kept
	st.Duplicates = rowsIn - kept
	for _, c := range cols {
		st.Columns = append(st.Columns, c.name)
	}

	f, err := os.CreateTemp(opts.TempDir, "sluice-reduce-*")
	if err != nil {
		return st, fmt.Errorf("reduce %s: create temp file: %w", date, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	var ext string
	switch spec.Format {
	case "csv":
		ext = "csv"
		if spec.Compression == "gzip" {
			ext = "csv.gz"
		}
		err = writeCSV(f, spec, pd, next)
	default:
		ext = "parquet"
		err = writeParquet(f, spec, pd, next, opts.RowGroupRows, opts.TempDir)
	}
	if err != nil {
		return st, fmt.Errorf("reduce %s: write %s: %w", date, ext, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return st, fmt.Errorf("reduce %s: %w", date, err)
	}
	st.Bytes = size
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return st, fmt.Errorf("reduce %s: %w", date, err)
	}

	final := date.PartitionPath() + "part-00000." + ext
	staging := "_staging/" + final + "." + nonce()
	if err := out.Put(ctx, staging, f); err != nil {
		return st, fmt.Errorf("reduce %s: put %s: %w", date, staging, err)
	}
	published := false
	defer func() {
		// A failed publish must not leave a partition-sized object behind
		// each retry; the deletion below covers the successful path.
		if !published {
			_ = out.Delete(context.WithoutCancel(ctx), staging)
		}
	}()
	if err := copyObject(ctx, out, staging, final); err != nil {
		return st, fmt.Errorf("reduce %s: publish: %w", date, err)
	}
	st.File = final
	removed, err := clearPartition(ctx, out, date, final)
	st.Removed = removed
	if err != nil {
		return st, fmt.Errorf("reduce %s: %w", date, err)
	}
	published = true
	if err := out.Delete(ctx, staging); err != nil {
		return st, fmt.Errorf("reduce %s: delete %s: %w", date, staging, err)
	}
	return st, nil
}

// outputColumns decides the columns of a date's file and the source path ->
// name mapping, which is resolved over every path of the run.
func outputColumns(spec Spec, mans []*shardManifest, date Date, explicit []string) ([]outCol, map[string]string, []Collision) {
	allTypes := map[string]uint8{}
	dateCols := map[string]bool{}
	for _, m := range mans {
		for _, md := range m.Dates {
			for p, mask := range md.Columns {
				allTypes[p] |= mask
				if md.Date == date {
					dateCols[p] = true
				}
			}
		}
	}
	tsName := columnName(spec.TimestampField)
	utcName := tsName + "_utc"
	names, coll := resolveNames(slices.Collect(maps.Keys(allTypes)), []string{tsName, utcName})
	typeOf := map[string]colType{tsName: typeLocalTime, utcName: typeUTCTime}
	for p, n := range names {
		typeOf[n] = widen(allTypes[p])
	}
	var cols []outCol
	switch {
	case len(explicit) > 0:
		for _, n := range explicit {
			cols = append(cols, outCol{name: n, typ: typeOf[n]}) // unknown -> typeString
		}
		if spec.Format != "csv" {
			slices.SortFunc(cols, func(a, b outCol) int { return strings.Compare(a.name, b.name) })
			cols = slices.CompactFunc(cols, func(a, b outCol) bool { return a.name == b.name })
		}
		return cols, names, coll
	case spec.Format == "csv":
		for _, n := range names {
			cols = append(cols, outCol{name: n, typ: typeOf[n]})
		}
	default:
		for p := range dateCols {
			cols = append(cols, outCol{name: names[p], typ: typeOf[names[p]]})
		}
	}
	cols = append(cols, outCol{name: tsName, typ: typeLocalTime}, outCol{name: utcName, typ: typeUTCTime})
	slices.SortFunc(cols, func(a, b outCol) int { return strings.Compare(a.name, b.name) })
	return cols, names, coll
}

// readS2 loads a whole S2 stream through zr (reset to it, so that its
// buffers are reused) and checks its magic. The stream is read into
// reuse's memory when it is large enough.
func readS2(ctx context.Context, b storage.Reader, zr *s2.Reader, key, magic string, sizeHint int64, reuse []byte) ([]byte, error) {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer rc.Close()
	zr.Reset(rc)
	defer zr.Reset(nil)
	buf := bytes.NewBuffer(reuse[:0])
	buf.Grow(int(min(sizeHint, 1<<31)) + len(magic) + bytes.MinRead)
	if _, err := buf.ReadFrom(zr); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	data := buf.Bytes()
	if !bytes.HasPrefix(data, []byte(magic)) {
		return nil, fmt.Errorf("read %s: bad magic", key)
	}
	return data[len(magic):], nil
}

// mapColumn records, for an intermediate's column definition (its id and
// source path), which output column it feeds (-1: none in this partition).
func mapColumn(colMap []int32, id uint64, path []byte, names map[string]string, index map[string]int32) []int32 {
	for uint64(len(colMap)) <= id {
		colMap = append(colMap, -1)
	}
	if n, ok := names[string(path)]; ok {
		if i, ok := index[n]; ok {
			colMap[id] = i
		}
	}
	return colMap
}

func loadPartition(ctx context.Context, scratch storage.Reader, prefix string, mans []*shardManifest, date Date, cols []outCol, names map[string]string) (*partitionData, error) {
	pd, index := newPartitionData(cols)
	var rows int64
	for _, m := range mans {
		for _, md := range m.Dates {
			if md.Date == date {
				rows += md.Rows
			}
		}
	}
	pd.rows = make([]rowRef, 0, rows)
	zr := s2.NewReader(nil)
	for shard, m := range mans {
		var size int64 = -1
		for _, md := range m.Dates {
			if md.Date == date {
				size = md.Bytes
			}
		}
		if size < 0 {
			continue
		}
		key := rowsKey(prefix, shard, date)
		data, err := readS2(ctx, scratch, zr, key, rowsMagic, size, nil)
		if err != nil {
			return nil, err
		}
		pd.bufs = append(pd.bufs, data)
		file := int32(len(pd.colMaps))
		var colMap []int32
		r := byteReader{b: data}
		for len(r.b) > 0 && r.err == nil {
			switch r.byte() {
			case tagColumn:
				id := r.uvarint()
				p := r.bytes(r.uvarint())
				if r.err != nil || id > uint64(len(colMap))+1<<20 {
					return nil, fmt.Errorf("read %s: %w", key, errCorrupt)
				}
				colMap = mapColumn(colMap, id, p, names, index)
			case tagRow:
				var rr rowRef
				rr.shard = uint32(shard)
				rr.obj = uint32(r.uvarint())
				rr.line = r.uvarint()
				rr.us = r.varint()
				rr.off = r.varint()
				idb := r.bytes(r.uvarint())
				rr.id = unsafe.String(unsafe.SliceData(idb), len(idb))
				rr.fields = r.bytes(r.uvarint()) // checked when decoded
				rr.file = file
				pd.rows = append(pd.rows, rr)
			default:
				r.err = errCorrupt
			}
		}
		if r.err != nil {
			return nil, fmt.Errorf("read %s: %w", key, r.err)
		}
		pd.colMaps = append(pd.colMaps, colMap)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return pd, nil
}

// dedupe keeps, for every key, the copy with the smallest (shard, object,
// line), i.e. the smallest (object key, line). Copies of the key that
// landed on other dates of the run count too: when one of them is smaller,
// the key is dropped here and kept there. It returns the kept rows sorted
// by (utc timestamp, key).
func dedupe(ctx context.Context, scratch storage.Reader, prefix string, mans []*shardManifest, date Date, rows []rowRef) ([]int32, error) {
	best := make(map[string]int32, len(rows))
	for i := range rows {
		r := &rows[i]
		j, ok := best[r.id]
		if !ok || ordLess(r.shard, r.obj, r.line, rows[j].shard, rows[j].obj, rows[j].line) {
			best[r.id] = int32(i)
		}
	}
	var ids []byte
	zr := s2.NewReader(nil)
	for shard, m := range mans {
		for _, md := range m.Dates {
			if md.Date == date {
				continue
			}
			key := idsKey(prefix, shard, md.Date)
			data, err := readS2(ctx, scratch, zr, key, idsMagic, md.Rows*48, ids)
			if err != nil {
				return nil, err
			}
			ids = data // the next ids object reuses the memory
			r := byteReader{b: data}
			for len(r.b) > 0 && r.err == nil {
				id := r.bytes(r.uvarint())
				obj := uint32(r.uvarint())
				line := r.uvarint()
				j, ok := best[string(id)]
				if ok && ordLess(uint32(shard), obj, line, rows[j].shard, rows[j].obj, rows[j].line) {
					delete(best, string(id))
				}
			}
			if r.err != nil {
				return nil, fmt.Errorf("read %s: %w", key, r.err)
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
	slices.SortFunc(keys, func(a, b sortKey) int {
		if a.us != b.us {
			return cmp.Compare(a.us, b.us)
		}
		return strings.Compare(rows[a.i].id, rows[b.i].id)
	})
	keep := make([]int32, len(keys))
	for j, k := range keys {
		keep[j] = k.i
	}
	return keep, nil
}

// clearPartition deletes every object in the date's partition folder except
// keep and returns the deleted keys.
func clearPartition(ctx context.Context, out storage.Bucket, date Date, keep string) ([]string, error) {
	dir := date.PartitionPath()
	var stale []string
	err := out.List(ctx, dir, func(oi storage.ObjectInfo) error {
		if oi.Key != keep {
			stale = append(stale, oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, k := range stale {
		if err := out.Delete(ctx, k); err != nil {
			return nil, fmt.Errorf("delete %s: %w", k, err)
		}
	}
	return stale, nil
}

// Copier is an optional Bucket capability: a server-side copy. Publishing
// uses it when the output bucket has it, and Get+Put otherwise.
type Copier interface {
	Copy(ctx context.Context, src, dst string) error
}

func copyObject(ctx context.Context, b storage.Bucket, src, dst string) error {
	if c, ok := b.(Copier); ok {
		if err := c.Copy(ctx, src, dst); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		return nil
	}
	rc, err := b.Get(ctx, src)
	if err != nil {
		return fmt.Errorf("get %s: %w", src, err)
	}
	defer rc.Close()
	if err := b.Put(ctx, dst, rc); err != nil {
		return fmt.Errorf("put %s: %w", dst, err)
	}
	return nil
}

func nonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
