package transform

import (
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
// every slice of its row group, in slice order: the row group's rows are
// the slices' rows, one slice after the other.
type FragmentInput struct {
	Date    civil.Date `json:"date"`
	Columns []Column   `json:"columns"`
	// From and To bound the group's columns [From, To).
	From  int      `json:"from"`
	To    int      `json:"to"`
	Codec string   `json:"codec"` // of the runs
	Runs  []RunRef `json:"runs"`
	// Rows, and per column of the group Values and StringBytes, are what
	// the runs hold (SliceStats summed), to size the columns up front.
	Rows        int64   `json:"rows"`
	Values      []int64 `json:"values"`
	StringBytes []int64 `json:"string_bytes"`
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

// EncodeFragment reads the sorted runs of a column group, one slice after
// the other (the row group's order), and writes the rows' values of the
// group's columns to w: for Parquet a file of one row
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
	src := newFragmentRows(ctx, scratch, in)
	cw := &countingWriter{w: w}
	ff, err := FileFormatOf(spec)
	if err != nil {
		return fail(err)
	}
	if st.Rows, err = ff.encode(cw, spec, in, src); err != nil {
		return fail(err)
	}
	st.Bytes = cw.n
	return st, nil
}

// fragmentRows yields a fragment's rows: its runs' records, one run after
// the other, each run read whole when its turn comes.
type fragmentRows struct {
	ctx     context.Context
	scratch storage.Reader
	in      FragmentInput
	read    *intermediate.Reader
	run     int    // the next run to load
	data    []byte // what is left of the current run
	buf     []byte // the current run's memory, reused
	row     intermediate.SortedRow
}

func newFragmentRows(ctx context.Context, scratch storage.Reader, in FragmentInput) *fragmentRows {
	return &fragmentRows{ctx: ctx, scratch: scratch, in: in, read: intermediate.NewReader(in.Codec)}
}

// next returns the next row in output order, or nil at the end; the row
// is valid until the next call.
func (f *fragmentRows) next() (*intermediate.SortedRow, error) {
	for len(f.data) == 0 {
		if f.run == len(f.in.Runs) {
			return nil, nil
		}
		r := f.in.Runs[f.run]
		data, err := f.read.LoadAll(f.ctx, f.scratch, r.Key, r.Size, f.buf)
		if err != nil {
			return nil, err
		}
		f.buf, f.data = data, data
		f.run++
	}
	row, rest, err := intermediate.ParseSortedRow(f.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.in.Runs[f.run-1].Key, err)
	}
	f.row, f.data = row, rest
	return &f.row, nil
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
