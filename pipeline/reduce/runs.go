package reduce

import (
	"container/heap"
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

// writeRun writes the kept rows, in order, to f as a spill run
// (intermediate.SpillWriter) and rewinds it.
func writeRun(f *os.File, rows []rowRef, keep []int32) error {
	w := intermediate.NewSpillWriter(f)
	for _, i := range keep {
		r := &rows[i]
		w.Add(r.us, r.off, r.fp, int(r.file), r.id, r.fields)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write run: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind run: %w", err)
	}
	return nil
}

// runReader reads one spill run; row is the current record.
type runReader struct {
	sr  *intermediate.SpillReader
	row rowRef
}

func (r *runReader) next() (bool, error) {
	ok, err := r.sr.Next()
	if !ok || err != nil {
		return false, err
	}
	x := &r.sr.Row
	r.row = rowRef{us: x.US, off: x.Off, fp: x.FP, file: int32(x.File), fields: x.Fields,
		id: unsafe.String(unsafe.SliceData(x.Key), len(x.Key))}
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
		r := &runReader{sr: intermediate.NewSpillReader(f, 2*mapper.MaxLineBytes)}
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
