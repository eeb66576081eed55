package transform

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"sluice/pipeline/format/parquet"
	"sluice/pipeline/storage"
)

// FileFormat is one kind of output file: how its fragments are encoded
// and assembled into a file, and what the job needs to plan for it.
type FileFormat interface {
	// Ext is the extension of the files, without the dot.
	Ext(spec Spec) string
	// SplitsColumns tells whether several tasks may encode the columns
	// of one row group (Parquet, whose column chunks stand alone; not
	// CSV, whose row is one line).
	SplitsColumns() bool
	// OutputRatio estimates output bytes per byte of row records, for a
	// first build (later builds use the ratio their partitions measured).
	OutputRatio(spec Spec) float64
	// Assemble returns the sections (storage.Compose) of a file made of
	// fragments: blocks of rows in order, each the fragments of its
	// column groups in column order.
	Assemble(ctx context.Context, r storage.Reader, spec Spec, blocks [][]FragmentRef) ([]storage.Section, error)
	encode(w io.Writer, spec Spec, in FragmentInput, m *fragmentRows) (rows int64, err error)
}

// FragmentRef names a written fragment.
type FragmentRef struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// FileFormatOf is the file format of the job's output.
func FileFormatOf(spec Spec) (FileFormat, error) {
	switch spec.Format {
	case "parquet":
		return parquetFormat{}, nil
	case "csv":
		return csvFormat{}, nil
	}
	return nil, fmt.Errorf("format: %q is not parquet or csv", spec.Format)
}

// FileExt is the extension of the job's output files.
func (s Spec) FileExt() string {
	if ff, err := FileFormatOf(s); err == nil {
		return ff.Ext(s)
	}
	return s.Format
}

type parquetFormat struct{}

func (parquetFormat) Ext(Spec) string     { return "parquet" }
func (parquetFormat) SplitsColumns() bool { return true }

// OutputRatio is what the 1 GB benchmark measured (77 MB of Parquet from
// 570 MB of row records), rounded up so that a first build's files come
// out at or under the target size.
func (parquetFormat) OutputRatio(Spec) float64 { return 0.15 }

// parquetType is the Parquet type of a column type.
func parquetType(t ColumnType) parquet.Type {
	switch t {
	case TypeBool:
		return parquet.Bool
	case TypeBigint:
		return parquet.Int64
	case TypeDouble:
		return parquet.Double
	case TypeLocalTime:
		return parquet.TimestampLocal
	case TypeUTCTime:
		return parquet.TimestampUTC
	}
	return parquet.String
}

func parquetColumns(cols []Column) []parquet.Column {
	out := make([]parquet.Column, len(cols))
	for i, c := range cols {
		out[i] = parquet.Column{Name: c.Name, Type: parquetType(c.Type)}
	}
	return out
}

// parquetOptions are the writer options of the job's files: its codec,
// and its time zone in the key-value metadata (what the local timestamp
// column's wall clock is in).
func parquetOptions(spec Spec) (parquet.Options, error) {
	codec, err := parquet.Codec(spec.Compression)
	if err != nil {
		return parquet.Options{}, err
	}
	return parquet.Options{Codec: codec, KeyValue: map[string]string{"sluice.time_zone": spec.TimeZone}}, nil
}

func (parquetFormat) encode(w io.Writer, spec Spec, in FragmentInput, m *fragmentRows) (int64, error) {
	cols := in.Columns[in.From:in.To]
	opts, err := parquetOptions(spec)
	if err != nil {
		return 0, err
	}
	total := int(in.Rows)
	vals := make([]*parquet.Values, len(cols))
	tsCol, utcCol := -1, -1
	for j, c := range cols {
		vals[j] = parquet.NewValues(parquetType(c.Type))
		count, size := total, 0
		if j < len(in.Values) {
			count, size = int(in.Values[j]), int(in.StringBytes[j])
		}
		switch c.Type {
		case TypeLocalTime:
			tsCol, count = j, total
		case TypeUTCTime:
			utcCol, count = j, total
		}
		vals[j].Grow(total, count, size)
	}
	rows := 0
	catchUp := func(v *parquet.Values) {
		if n := rows - v.Rows(); n > 0 {
			v.AppendNulls(n)
		}
	}
	for {
		row, err := m.next()
		if err != nil {
			return 0, err
		}
		if row == nil {
			break
		}
		fr := newFieldReader(row.Fields)
		for {
			c, kind, ok, err := fr.next()
			if err != nil {
				return 0, err
			}
			if !ok {
				break
			}
			j := c - in.From
			if j < 0 || j >= len(cols) {
				return 0, fmt.Errorf("field of column %d in a run of columns %d-%d: %w", c, in.From, in.To, errCorrupt)
			}
			v := vals[j]
			catchUp(v)
			switch {
			case kind == kindString && v.Type == parquet.String:
				v.AppendString(fr.string())
			case kind == kindInt && v.Type == parquet.Int64:
				v.AppendInt(fr.int())
			case kind == kindDouble && v.Type == parquet.Double:
				v.AppendDouble(fr.double())
			case kind == kindBool && v.Type == parquet.Bool:
				v.AppendBool(fr.bool())
			default:
				return 0, fmt.Errorf("a %s value in column %s (%s): %w", kindNames[kind], cols[j].Name, cols[j].Type, errCorrupt)
			}
		}
		if tsCol >= 0 {
			catchUp(vals[tsCol])
			vals[tsCol].AppendInt(row.US + row.Off*1_000_000)
		}
		if utcCol >= 0 {
			catchUp(vals[utcCol])
			vals[utcCol].AppendInt(row.US)
		}
		rows++
	}
	for _, v := range vals {
		catchUp(v)
	}
	pw := parquet.NewWriter(w, parquetColumns(cols), opts)
	if err := pw.WriteRowGroup(vals); err != nil {
		return 0, err
	}
	return int64(rows), pw.Close()
}

func (parquetFormat) Assemble(ctx context.Context, r storage.Reader, spec Spec, blocks [][]FragmentRef) ([]storage.Section, error) {
	frags := make([][]*parquet.Fragment, len(blocks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, block := range blocks {
		frags[i] = make([]*parquet.Fragment, len(block))
		for j, f := range block {
			g.Go(func() (err error) {
				frags[i][j], err = parquet.ReadFragment(gctx, r, f.Key, f.Size)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	opts, err := parquetOptions(spec)
	if err != nil {
		return nil, err
	}
	return parquet.Assemble(frags, opts.KeyValue)
}

type csvFormat struct{}

func (csvFormat) Ext(spec Spec) string {
	if spec.Compression == "gzip" {
		return "csv.gz"
	}
	return "csv"
}

func (csvFormat) SplitsColumns() bool { return false }

func (csvFormat) OutputRatio(spec Spec) float64 {
	if spec.Compression == "gzip" {
		return 0.15
	}
	return 0.9
}

// CSV renders timestamps as text a reader can parse without a zone: the
// local wall clock as "2006-01-02 15:04:05.000000", the instant with a Z.
const (
	csvLocalLayout = "2006-01-02 15:04:05.000000"
	csvUTCLayout   = "2006-01-02 15:04:05.000000Z"
)

func (csvFormat) encode(w io.Writer, spec Spec, in FragmentInput, m *fragmentRows) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var gz *gzip.Writer
	var dst io.Writer = bw
	if spec.Compression == "gzip" {
		// Each fragment is a gzip member of its own: members concatenate
		// into one valid gzip file.
		gz = gzip.NewWriter(bw)
		dst = gz
	}
	cw := csv.NewWriter(dst)
	cols := in.Columns
	rec := make([]string, len(cols))
	if in.Header {
		for i, c := range cols {
			rec[i] = c.Name
		}
		if err := cw.Write(rec); err != nil {
			return 0, err
		}
	}
	var rows int64
	for {
		row, err := m.next()
		if err != nil {
			return rows, err
		}
		if row == nil {
			break
		}
		clear(rec)
		fr := newFieldReader(row.Fields)
		for {
			c, kind, ok, err := fr.next()
			if err != nil {
				return rows, err
			}
			if !ok {
				break
			}
			if c < 0 || c >= len(cols) {
				return rows, errCorrupt
			}
			switch kind {
			case kindString:
				rec[c] = string(fr.string())
			case kindInt:
				rec[c] = strconv.FormatInt(fr.int(), 10)
			case kindDouble:
				rec[c] = strconv.FormatFloat(fr.double(), 'g', -1, 64)
			case kindBool:
				rec[c] = strconv.FormatBool(fr.bool())
			default:
				return rows, errCorrupt
			}
		}
		for c, col := range cols {
			switch col.Type {
			case TypeLocalTime:
				rec[c] = time.UnixMicro(row.US + row.Off*1_000_000).UTC().Format(csvLocalLayout)
			case TypeUTCTime:
				rec[c] = time.UnixMicro(row.US).UTC().Format(csvUTCLayout)
			}
		}
		if err := cw.Write(rec); err != nil {
			return rows, err
		}
		rows++
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return rows, err
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return rows, err
		}
	}
	return rows, bw.Flush()
}

// Assemble concatenates a CSV file's fragments: each block is one
// fragment of every column.
func (csvFormat) Assemble(ctx context.Context, r storage.Reader, spec Spec, blocks [][]FragmentRef) ([]storage.Section, error) {
	var out []storage.Section
	for i, block := range blocks {
		if len(block) != 1 {
			return nil, fmt.Errorf("csv: block %d has %d fragments, want 1", i, len(block))
		}
		out = append(out, storage.Section{Key: block[0].Key, Length: block[0].Size})
	}
	return out, nil
}

// SplitsColumns tells whether the job's files may have their columns
// encoded by several tasks.
func SplitsColumns(spec Spec) bool {
	ff, err := FileFormatOf(spec)
	return err == nil && ff.SplitsColumns()
}
