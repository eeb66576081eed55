package transform

import (
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"sluice/pipeline/civil"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
)

// FragmentInput is what one encode task needs: the date's columns, the
// range of them its column group holds, and that group's sorted runs from
// every slice of its row group, in slice order.
type FragmentInput struct {
	Date    civil.Date `json:"date"`
	Columns []Column   `json:"columns"`
	// From and To bound the group's columns [From, To).
	From  int      `json:"from"`
	To    int      `json:"to"`
	Codec string   `json:"codec"` // of the runs
	Runs  []RunRef `json:"runs"`
	// Header is set on the first fragment of a CSV file, which starts
	// with the column names.
	Header bool `json:"header,omitempty"`
}

// RunRef names one sorted run in scratch.
type RunRef struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// FragmentStats summarises one encoded fragment.
type FragmentStats struct {
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
}

// EncodeFragment merges the sorted runs of a column group by (utc
// timestamp, key fingerprint), ties broken by slice order, and writes the
// rows' values of the group's columns to w: for Parquet a file of one row
// group holding those columns (parquet.Assemble puts it in its place), for
// CSV the rows as text (one gzip member each when compressed, so that
// fragments concatenate).
func EncodeFragment(ctx context.Context, scratch storage.Reader, spec Spec, in FragmentInput, w io.Writer) (FragmentStats, error) {
	var st FragmentStats
	fail := func(err error) (FragmentStats, error) {
		return st, fmt.Errorf("encode %s columns %d-%d: %w", in.Date, in.From, in.To, err)
	}
	if in.From < 0 || in.To > len(in.Columns) || in.From >= in.To {
		return fail(fmt.Errorf("no such column range of %d columns", len(in.Columns)))
	}
	m, err := openRuns(ctx, scratch, in)
	if err != nil {
		return fail(err)
	}
	defer m.close()
	cw := &countingWriter{w: w}
	ff, err := FileFormatOf(spec)
	if err != nil {
		return fail(err)
	}
	if st.Rows, err = ff.encode(cw, spec, in, m); err != nil {
		return fail(err)
	}
	st.Bytes = cw.n
	return st, nil
}

// runMerger merges sorted runs.
type runMerger struct {
	h       mergeHeap
	closers []io.Closer
	started bool
}

type mergeItem struct {
	r   *intermediate.SortedReader
	run int
}

type mergeHeap []mergeItem

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := &h[i].r.Row, &h[j].r.Row
	if a.US != b.US || a.FP != b.FP {
		return intermediate.SortedLess(a, b)
	}
	return h[i].run < h[j].run
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(mergeItem)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func openRuns(ctx context.Context, scratch storage.Reader, in FragmentInput) (*runMerger, error) {
	m := &runMerger{}
	for i, run := range in.Runs {
		br, c, err := intermediate.Stream(ctx, scratch, in.Codec, intermediate.Span{Key: run.Key, Length: run.Size})
		if err != nil {
			m.close()
			return nil, err
		}
		m.closers = append(m.closers, c)
		r := intermediate.NewSortedReader(br)
		ok, err := r.Next()
		if err != nil {
			m.close()
			return nil, fmt.Errorf("%s: %w", run.Key, err)
		}
		if ok {
			m.h = append(m.h, mergeItem{r: r, run: i})
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// next returns the next row in output order, or nil at the end; the row is
// valid until the next call.
func (m *runMerger) next() (*intermediate.SortedRow, error) {
	if m.started && len(m.h) > 0 {
		ok, err := m.h[0].r.Next()
		if err != nil {
			return nil, err
		}
		if ok {
			heap.Fix(&m.h, 0)
		} else {
			heap.Pop(&m.h)
		}
	}
	m.started = true
	if len(m.h) == 0 {
		return nil, nil
	}
	return &m.h[0].r.Row, nil
}

func (m *runMerger) close() {
	for _, c := range m.closers {
		c.Close()
	}
}

// fieldReader walks the fields of a sorted record.
type fieldReader struct {
	br byteReader
	n  uint64
}

func newFieldReader(fields []byte) fieldReader {
	f := fieldReader{br: byteReader{b: fields}}
	f.n = f.br.uvarint()
	return f
}

// next returns the next field's column and kind, the reader then at its
// payload; ok is false at the end.
func (f *fieldReader) next() (col int, kind byte, ok bool, err error) {
	if f.n == 0 || f.br.err != nil {
		return 0, 0, false, f.br.err
	}
	f.n--
	col = int(f.br.uvarint())
	kind = f.br.byte()
	return col, kind, f.br.err == nil, f.br.err
}

func (f *fieldReader) int() int64     { return f.br.varint() }
func (f *fieldReader) bool() bool     { return f.br.byte() != 0 }
func (f *fieldReader) string() []byte { return f.br.bytes(f.br.uvarint()) }
func (f *fieldReader) double() float64 {
	return math.Float64frombits(binary.LittleEndian.Uint64(f.br.bytes(8)))
}
