package reduce

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"unsafe"

	"sluice/pipeline/intermediate"
	"sluice/pipeline/mapper"
)

// A slice whose rows do not fit Options.MemoryBytes is reduced a
// chunk of virtual buckets at a time: each chunk is loaded, deduplicated
// (its keys meet no other chunk's, as a key's copies share a virtual
// bucket) and sorted, and its kept rows are written to a local spill run;
// the runs are then merged through a heap into the column groups' sorted
// runs. Keys are unique, so rowCmp is a total order and the merged
// sequence is exactly the in-memory sort: the same bytes.

// writeRun writes the kept rows, in order, to f and rewinds it.
// Record: varint us, varint off, 8 bytes fingerprint, uvarint file,
// uvarint len + key, uvarint len + fields.
func writeRun(f *os.File, rows []rowRef, keep []int32) error {
	w := bufio.NewWriterSize(f, 256<<10)
	var hdr []byte
	for _, i := range keep {
		r := &rows[i]
		hdr = binary.AppendVarint(hdr[:0], r.us)
		hdr = binary.AppendVarint(hdr, r.off)
		hdr = binary.LittleEndian.AppendUint64(hdr, r.fp)
		hdr = binary.AppendUvarint(hdr, uint64(r.file))
		hdr = binary.AppendUvarint(hdr, uint64(len(r.id)))
		w.Write(hdr)
		w.WriteString(r.id)
		hdr = binary.AppendUvarint(hdr[:0], uint64(len(r.fields)))
		w.Write(hdr)
		w.Write(r.fields)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write run: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind run: %w", err)
	}
	return nil
}

// readN reads n bytes into buf (reused) and returns them.
func readN(br *bufio.Reader, buf []byte, n uint64) ([]byte, error) {
	if n > 2*mapper.MaxLineBytes {
		return buf, intermediate.ErrCorrupt
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		return buf, err
	}
	return buf, nil
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
	var fp [8]byte
	if err == nil {
		off, err = binary.ReadVarint(r.br)
	}
	if err == nil {
		_, err = io.ReadFull(r.br, fp[:])
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
	r.row = rowRef{us: us, off: off, fp: binary.LittleEndian.Uint64(fp[:]), file: int32(file), fields: r.fields,
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
