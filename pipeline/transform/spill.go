package transform

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"math/bits"
	"os"
	"slices"
	"unsafe"

	"github.com/klauspost/compress/s2"

	"sluice/pipeline/storage"
)

// The reduce of a date whose rows do not fit in ReduceOptions.MemoryBytes.
// It makes the same decisions as the in-memory path, in bounded memory:
//
//  1. Dedupe. Every ids record of the run (of every date: a copy on another
//     date can win) is written to one of P local partition files chosen by a
//     hash of the key, with P such that one partition's map fits in half the
//     budget. Each partition is then loaded alone and every key's smallest
//     (shard, object, line) found; when that copy belongs to this date, its
//     row is marked kept in a bitmap per shard (ids and rows files list a
//     date's rows in the same order).
//  2. Sort. The date's rows files are streamed; kept rows are copied into a
//     memory chunk, which is sorted by (utc timestamp, key) and written to a
//     local run file whenever it reaches the budget.
//  3. Merge. The runs are merged through a heap into the file writer.
//
// Keys are unique after step 1, so (utc timestamp, key) is a total order and
// the merged sequence is exactly the in-memory sort: the same bytes.

// spillRowBytes is the in-memory size of a rowRef, for the budget.
const spillRowBytes = int64(unsafe.Sizeof(rowRef{}))

// idEntryBytes is the estimated memory of one key in a dedupe map.
const idEntryBytes = 128

type spill struct {
	ctx     context.Context
	scratch storage.Reader
	prefix  string
	mans    []*shardManifest
	date    Date
	budget  int64
	dir     string

	temps []*os.File
	runs  int // sorted runs written
}

func (sp *spill) close() {
	for _, f := range sp.temps {
		f.Close()
		os.Remove(f.Name())
	}
	sp.temps = nil
}

func (sp *spill) tempFile() (*os.File, error) {
	f, err := os.CreateTemp(sp.dir, "sluice-spill-*")
	if err != nil {
		return nil, fmt.Errorf("create spill file: %w", err)
	}
	sp.temps = append(sp.temps, f)
	return f, nil
}

// stream opens an intermediate object for sequential reading.
func (sp *spill) stream(key, magic string) (*bufio.Reader, io.Closer, error) {
	rc, err := sp.scratch.Get(sp.ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("get %s: %w", key, err)
	}
	br := bufio.NewReaderSize(s2.NewReader(rc), 256<<10)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != magic {
		rc.Close()
		return nil, nil, fmt.Errorf("read %s: bad magic", key)
	}
	return br, rc, nil
}

// run returns the partition's decoder state, an iterator over its kept rows
// in output order, and their number.
func (sp *spill) run(cols []outCol, names map[string]string) (*partitionData, rowIter, int64, error) {
	keep, kept, err := sp.dedupe()
	if err != nil {
		return nil, nil, 0, err
	}
	pd, index := newPartitionData(cols)
	// Blocks of an eighth of the budget (64 KiB to 4 MiB) keep the chunk's
	// rounding small against the budget.
	ch := chunk{blockSize: int(min(max(sp.budget/8, 64<<10), 4<<20))}
	var runs []*os.File
	flushRun := func() error {
		f, err := sp.tempFile()
		if err != nil {
			return err
		}
		if err := ch.writeRun(f); err != nil {
			return fmt.Errorf("write spill run: %w", err)
		}
		runs = append(runs, f)
		sp.runs++
		return nil
	}
	var rec []byte
	for shard, m := range sp.mans {
		if !slices.ContainsFunc(m.Dates, func(md manifestDate) bool { return md.Date == sp.date }) {
			continue
		}
		key := rowsKey(sp.prefix, shard, sp.date)
		br, rc, err := sp.stream(key, rowsMagic)
		if err != nil {
			return nil, nil, 0, err
		}
		file := int32(len(pd.colMaps))
		var colMap []int32
		bitmap := keep[shard]
		var idx int
		for err == nil {
			var tag byte
			tag, err = br.ReadByte()
			if err != nil {
				break
			}
			switch tag {
			case tagColumn:
				var id, n uint64
				id, err = binary.ReadUvarint(br)
				if err == nil {
					n, err = binary.ReadUvarint(br)
				}
				if err == nil && (n > MaxLineBytes || id > uint64(len(colMap))+1<<20) {
					err = errCorrupt
				}
				if err == nil {
					rec, err = readN(br, rec, n)
				}
				if err != nil {
					break
				}
				colMap = mapColumn(colMap, id, rec, names, index)
			case tagRow:
				var r rowRef
				var idLen, restLen uint64
				_, err = binary.ReadUvarint(br) // object
				if err == nil {
					_, err = binary.ReadUvarint(br) // line
				}
				if err == nil {
					r.us, err = binary.ReadVarint(br)
				}
				if err == nil {
					r.off, err = binary.ReadVarint(br)
				}
				if err == nil {
					idLen, err = binary.ReadUvarint(br)
				}
				if err == nil && idLen > MaxLineBytes {
					err = errCorrupt
				}
				if err == nil {
					rec, err = readN(br, rec, idLen)
				}
				if err == nil {
					restLen, err = binary.ReadUvarint(br)
				}
				if err == nil && restLen > MaxLineBytes*2 {
					err = errCorrupt
				}
				if err != nil {
					break
				}
				if idx/64 >= len(bitmap) {
					err = errCorrupt
					break
				}
				if bitmap[idx/64]&(1<<(idx%64)) == 0 {
					_, err = br.Discard(int(restLen))
				} else {
					dst := ch.alloc(int(idLen + restLen))
					copy(dst, rec)
					if _, err = io.ReadFull(br, dst[idLen:]); err == nil {
						r.id = unsafe.String(unsafe.SliceData(dst), int(idLen))
						r.fields = dst[idLen:]
						r.file = file
						ch.rows = append(ch.rows, r)
					}
				}
				idx++
				if err == nil && ch.size() >= sp.budget {
					err = flushRun()
				}
			default:
				err = errCorrupt
			}
			if err == io.EOF { // inside a record
				err = io.ErrUnexpectedEOF
			}
		}
		rc.Close()
		if err != io.EOF {
			return nil, nil, 0, fmt.Errorf("read %s: %w", key, err)
		}
		pd.colMaps = append(pd.colMaps, colMap)
		if err := sp.ctx.Err(); err != nil {
			return nil, nil, 0, err
		}
	}
	if len(runs) == 0 { // everything kept fitted after all
		slices.SortFunc(ch.rows, func(a, b rowRef) int { return rowCmp(&a, &b) })
		rows := ch.rows
		return pd, func() (*rowRef, error) {
			if len(rows) == 0 {
				return nil, nil
			}
			r := &rows[0]
			rows = rows[1:]
			return r, nil
		}, kept, nil
	}
	if len(ch.rows) > 0 {
		if err := flushRun(); err != nil {
			return nil, nil, 0, err
		}
	}
	ch = chunk{}
	pd.copyStrings = true
	next, err := mergeRuns(runs)
	if err != nil {
		return nil, nil, 0, err
	}
	return pd, next, kept, nil
}

// readN reads n bytes into buf (reused) and returns them.
func readN(br *bufio.Reader, buf []byte, n uint64) ([]byte, error) {
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		return buf, err
	}
	return buf, nil
}

// readIDRecord reads one record of an ids object; io.EOF means the clean
// end.
func readIDRecord(br *bufio.Reader, id []byte) ([]byte, uint64, uint64, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return id, 0, 0, err
	}
	var obj, line uint64
	if n > MaxLineBytes {
		err = errCorrupt
	}
	if err == nil {
		id, err = readN(br, id, n)
	}
	if err == nil {
		obj, err = binary.ReadUvarint(br)
	}
	if err == nil {
		line, err = binary.ReadUvarint(br)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return id, obj, line, err
}

// dedupe decides which of the date's rows are kept: bitmaps by shard,
// indexed by the row's position in its rows (and ids) file.
func (sp *spill) dedupe() (map[int][]uint64, int64, error) {
	var total int64
	keep := map[int][]uint64{}
	for shard, m := range sp.mans {
		for _, md := range m.Dates {
			total += md.Rows
			if md.Date == sp.date {
				keep[shard] = make([]uint64, (md.Rows+63)/64)
			}
		}
	}
	parts := int((total*idEntryBytes)/(sp.budget/2) + 1)
	parts = min(parts, 256)
	files := make([]*os.File, parts)
	ws := make([]*bufio.Writer, parts)
	for i := range files {
		f, err := sp.tempFile()
		if err != nil {
			return nil, 0, err
		}
		files[i], ws[i] = f, bufio.NewWriterSize(f, 32<<10)
	}
	seed := maphash.MakeSeed()
	var rec, id []byte
	for shard, m := range sp.mans {
		for _, md := range m.Dates {
			key := idsKey(sp.prefix, shard, md.Date)
			br, rc, err := sp.stream(key, idsMagic)
			if err != nil {
				return nil, 0, err
			}
			mine := md.Date == sp.date
			for idx := uint64(0); ; idx++ {
				var obj, line uint64
				if id, obj, line, err = readIDRecord(br, id); err != nil {
					break
				}
				var tag uint64
				if mine {
					tag = idx + 1
				}
				rec = binary.AppendUvarint(rec[:0], uint64(len(id)))
				rec = append(rec, id...)
				rec = binary.AppendUvarint(rec, uint64(shard))
				rec = binary.AppendUvarint(rec, obj)
				rec = binary.AppendUvarint(rec, line)
				rec = binary.AppendUvarint(rec, tag)
				if _, err = ws[maphash.Bytes(seed, id)%uint64(parts)].Write(rec); err != nil {
					break
				}
			}
			rc.Close()
			if err != io.EOF {
				return nil, 0, fmt.Errorf("read %s: %w", key, err)
			}
		}
	}
	type best struct {
		shard, obj uint32
		line, tag  uint64
	}
	var kept int64
	for i, f := range files {
		if err := ws[i].Flush(); err != nil {
			return nil, 0, fmt.Errorf("write spill ids: %w", err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, 0, fmt.Errorf("rewind spill ids: %w", err)
		}
		br := bufio.NewReaderSize(f, 64<<10)
		seen := map[string]best{}
		for {
			n, err := binary.ReadUvarint(br)
			if err == io.EOF {
				break
			}
			if err == nil {
				id, err = readN(br, id, n)
			}
			var b best
			var shard, obj uint64
			if err == nil {
				shard, err = binary.ReadUvarint(br)
			}
			if err == nil {
				obj, err = binary.ReadUvarint(br)
			}
			if err == nil {
				b.line, err = binary.ReadUvarint(br)
			}
			if err == nil {
				b.tag, err = binary.ReadUvarint(br)
			}
			if err != nil {
				return nil, 0, fmt.Errorf("read spill ids: %w", err)
			}
			b.shard, b.obj = uint32(shard), uint32(obj)
			old, ok := seen[string(id)]
			if !ok || ordLess(b.shard, b.obj, b.line, old.shard, old.obj, old.line) {
				seen[string(id)] = b
			}
		}
		for _, b := range seen {
			if b.tag > 0 {
				i := b.tag - 1
				bm := keep[int(b.shard)]
				if i/64 >= uint64(len(bm)) {
					return nil, 0, fmt.Errorf("read spill ids: %w", errCorrupt)
				}
				bm[i/64] |= 1 << (i % 64)
			}
		}
		// The partition file is done with; give its disk space back.
		f.Truncate(0)
		if err := sp.ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
	for _, bm := range keep {
		for _, w := range bm {
			kept += int64(bits.OnesCount64(w))
		}
	}
	return keep, kept, nil
}

// chunk is kept rows in memory; their bytes live in fixed blocks so that
// rows can point into them while more are added.
type chunk struct {
	blocks [][]byte // full blocks, then the current one
	used   int      // bytes used in the current block
	rows   []rowRef

	blockSize int
}

func (c *chunk) alloc(n int) []byte {
	if len(c.blocks) == 0 || c.used+n > len(c.blocks[len(c.blocks)-1]) {
		c.blocks = append(c.blocks, make([]byte, max(n, c.blockSize)))
		c.used = 0
	}
	b := c.blocks[len(c.blocks)-1][c.used : c.used+n : c.used+n]
	c.used += n
	return b
}

func (c *chunk) size() int64 {
	var n int64
	for _, b := range c.blocks {
		n += int64(len(b))
	}
	return n + int64(cap(c.rows))*spillRowBytes
}

// writeRun sorts the chunk, writes it to f and empties the chunk.
// Record: varint us, varint off, uvarint file, uvarint len + key,
// uvarint len + fields.
func (c *chunk) writeRun(f *os.File) error {
	slices.SortFunc(c.rows, func(a, b rowRef) int { return rowCmp(&a, &b) })
	w := bufio.NewWriterSize(f, 256<<10)
	var hdr []byte
	for i := range c.rows {
		r := &c.rows[i]
		hdr = binary.AppendVarint(hdr[:0], r.us)
		hdr = binary.AppendVarint(hdr, r.off)
		hdr = binary.AppendUvarint(hdr, uint64(r.file))
		hdr = binary.AppendUvarint(hdr, uint64(len(r.id)))
		w.Write(hdr)
		w.WriteString(r.id)
		hdr = binary.AppendUvarint(hdr[:0], uint64(len(r.fields)))
		w.Write(hdr)
		w.Write(r.fields)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	clear(c.rows)
	c.rows = c.rows[:0]
	// Keep one block for the next run; drop the rest.
	if len(c.blocks) > 0 {
		c.blocks = c.blocks[:1]
	}
	c.used = 0
	return nil
}

// runReader reads one sorted run; row is the current record.
type runReader struct {
	br         *bufio.Reader
	row        rowRef
	id, fields []byte
}

func (r *runReader) next() (bool, error) {
	us, err := binary.ReadVarint(r.br)
	if err == io.EOF {
		return false, nil
	}
	var off int64
	var file, n uint64
	if err == nil {
		off, err = binary.ReadVarint(r.br)
	}
	if err == nil {
		file, err = binary.ReadUvarint(r.br)
	}
	if err == nil {
		n, err = binary.ReadUvarint(r.br)
	}
	if err == nil {
		r.id, err = readN(r.br, r.id, n)
	}
	if err == nil {
		n, err = binary.ReadUvarint(r.br)
	}
	if err == nil {
		r.fields, err = readN(r.br, r.fields, n)
	}
	if err != nil {
		return false, fmt.Errorf("read spill run: %w", err)
	}
	r.row = rowRef{us: us, off: off, file: int32(file), fields: r.fields,
		id: unsafe.String(unsafe.SliceData(r.id), len(r.id))}
	return true, nil
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return rowCmp(&h[i].row, &h[j].row) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeRuns merges sorted runs. The returned row is valid until the next
// call, which advances the run it came from.
func mergeRuns(runs []*os.File) (rowIter, error) {
	h := make(runHeap, 0, len(runs))
	for _, f := range runs {
		r := &runReader{br: bufio.NewReaderSize(f, 64<<10)}
		ok, err := r.next()
		if err != nil {
			return nil, err
		}
		if ok {
			h = append(h, r)
		}
	}
	heap.Init(&h)
	started := false
	return func() (*rowRef, error) {
		if started && len(h) > 0 {
			ok, err := h[0].next()
			if err != nil {
				return nil, err
			}
			if ok {
				heap.Fix(&h, 0)
			} else {
				heap.Pop(&h)
			}
		}
		started = true
		if len(h) == 0 {
			return nil, nil
		}
		return &h[0].row, nil
	}, nil
}
