package reduce

import (
	"context"
	"fmt"
	"io"

	"sluice/pipeline/civil"
	"sluice/pipeline/format"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/iocount"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// FragmentInput is what one encode task needs: the date's columns, the
// range of them its column group holds, and that group's sorted runs from
// every slice of its row group, in slice order.
type FragmentInput struct {
	Date civil.Date `json:"date"`
	// Fragment is the columns, the group's range [From, To) of them, and
	// what the runs hold (SliceStats summed).
	format.Fragment
	Codec string   `json:"codec"` // of the runs
	Runs  []RunRef `json:"runs"`
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
func EncodeFragment(ctx context.Context, scratch storage.Reader, spec transform.Spec, in FragmentInput, w io.Writer) (FragmentStats, error) {
	var st FragmentStats
	fail := func(err error) (FragmentStats, error) {
		return st, fmt.Errorf("encode %s columns %d-%d: %w", in.Date, in.From, in.To, err)
	}
	if in.From < 0 || in.To > len(in.Columns) || in.From >= in.To {
		return fail(fmt.Errorf("no such column range of %d columns", len(in.Columns)))
	}
	runs, err := loadRuns(ctx, scratch, in)
	if err != nil {
		return fail(err)
	}
	m, err := newRunMerger(runs)
	if err != nil {
		return fail(err)
	}
	cw := &iocount.Writer{W: w}
	ff, err := spec.FileFormat()
	if err != nil {
		return fail(err)
	}
	if st.Rows, err = ff.Encode(cw, spec.FormatOptions(), in.Fragment, m); err != nil {
		return fail(err)
	}
	st.Bytes = cw.N
	return st, nil
}

// runMerger merges sorted runs loaded in memory. It keeps the runs' heads
// in a binary heap of its own: container/heap's calls through an
// interface cost more than the comparisons, and the merge runs once per
// row and column group.
type runMerger struct {
	runs    [][]byte // what is left of each run
	head    []intermediate.SortedRow
	heap    []int // run indexes, smallest head first
	started bool
}

func (m *runMerger) less(a, b int) bool {
	x, y := &m.head[a], &m.head[b]
	if x.US != y.US {
		return x.US < y.US
	}
	if x.FP != y.FP {
		return x.FP < y.FP
	}
	return a < b
}

func (m *runMerger) down(i int) {
	h := m.heap
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && m.less(h[c+1], h[c]) {
			c++
		}
		if !m.less(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// advance reads run r's next record into its head; it reports false at
// the run's end.
func (m *runMerger) advance(r int) (bool, error) {
	if len(m.runs[r]) == 0 {
		return false, nil
	}
	row, rest, err := intermediate.ParseSortedRow(m.runs[r])
	if err != nil {
		return false, err
	}
	m.head[r], m.runs[r] = row, rest
	return true, nil
}

func newRunMerger(runs [][]byte) (*runMerger, error) {
	m := &runMerger{runs: runs, head: make([]intermediate.SortedRow, len(runs))}
	for r := range runs {
		ok, err := m.advance(r)
		if err != nil {
			return nil, err
		}
		if ok {
			m.heap = append(m.heap, r)
		}
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return m, nil
}

// Next returns the next row in output order, or nil at the end; the row
// is valid until the next call (format.Rows).
func (m *runMerger) Next() (*intermediate.SortedRow, error) {
	if m.started && len(m.heap) > 0 {
		ok, err := m.advance(m.heap[0])
		if err != nil {
			return nil, err
		}
		if !ok {
			last := len(m.heap) - 1
			m.heap[0] = m.heap[last]
			m.heap = m.heap[:last]
		}
		m.down(0)
	}
	m.started = true
	if len(m.heap) == 0 {
		return nil, nil
	}
	return &m.head[m.heap[0]], nil
}

// loadRuns reads every run of the fragment into memory: the encode task's
// input is bounded by the job's split (one column group of one row group).
func loadRuns(ctx context.Context, scratch storage.Reader, in FragmentInput) ([][]byte, error) {
	out := make([][]byte, len(in.Runs))
	read := intermediate.NewReader(in.Codec)
	for i, run := range in.Runs {
		data, err := read.LoadAll(ctx, scratch, run.Key, run.Size, nil)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}
