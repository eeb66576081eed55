package icetable

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"sluice/pipeline/format"

	"github.com/apache/iceberg-go"
	pqformat "github.com/parquet-go/parquet-go/format"
	"golang.org/x/sync/errgroup"

	"sluice/pipeline/format/parquet"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
)

// DataFile is one published data file as Iceberg's manifest describes
// it, from what its writer put in the fragments' footers.
type DataFile struct {
	Key   string `json:"key"` // in the output location
	Date  string `json:"date"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
	// Columns are the metrics of each column, by field id.
	Columns map[int]ColumnMetrics `json:"columns"`
}

// ColumnMetrics are one column's metrics in one file: Iceberg's column
// sizes, value and null counts, and bounds (Iceberg's single-value
// encoding, which for Sluice's types is Parquet's PLAIN one: 8 bytes
// little-endian for long, double and timestamps, 1 for boolean, the
// UTF-8 bytes of a string).
type ColumnMetrics struct {
	Bytes  int64  `json:"bytes"`
	Values int64  `json:"values"`
	Nulls  int64  `json:"nulls"`
	Lower  []byte `json:"lower,omitempty"`
	Upper  []byte `json:"upper,omitempty"`

	unbounded bool
}

// boundPrefix is how many bytes of a string bound the manifest keeps
// (Iceberg's default metrics mode, truncate(16)): a longer lower bound is
// cut to a prefix, which still bounds; a longer upper bound is left out.
const boundPrefix = 16

// build describes f for a manifest of spec, its path under location.
func (f DataFile) build(spec iceberg.PartitionSpec, location string) (iceberg.DataFile, error) {
	b, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentData, location+"/"+f.Key, iceberg.ParquetFile,
		map[int]any{partitionFieldID: f.Date}, nil, nil, f.Rows, f.Bytes)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", f.Key, err)
	}
	sizes, values, nulls := map[int]int64{}, map[int]int64{}, map[int]int64{}
	lower, upper := map[int][]byte{}, map[int][]byte{}
	for id, m := range f.Columns {
		sizes[id], values[id], nulls[id] = m.Bytes, m.Values, m.Nulls
		if m.Lower != nil {
			lower[id] = m.Lower
		}
		if m.Upper != nil {
			upper[id] = m.Upper
		}
	}
	return b.ColumnSizes(sizes).ValueCounts(values).NullValueCounts(nulls).LowerBoundValues(lower).UpperBoundValues(upper).Build(), nil
}

// Assemble is the Iceberg flavour of the Parquet format's assembly
// (transform's FileFormat.Assemble): the same file of the same fragments,
// but every column carries its Iceberg field id from ids (by name), and
// the file's metrics come back from the fragments' footers. kv is the
// footer's key-value metadata. When date is set, the file gets the
// partition column too, first, holding date in every row (a dictionary
// page and a few bytes a page): readers that do not fill an identity
// partition's column from the manifests (iceberg-go's scan) read it from
// the file.
func Assemble(ctx context.Context, r storage.Reader, blocks [][]format.FragmentRef, ids map[string]int, kv map[string]string, date string) ([]storage.Section, DataFile, error) {
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
		return nil, DataFile{}, err
	}
	var dateFrags map[string][]byte
	if date != "" {
		var err error
		if frags, dateFrags, err = withDateColumn(ctx, frags, date); err != nil {
			return nil, DataFile{}, err
		}
	}
	df := DataFile{Columns: map[int]ColumnMetrics{}}
	for _, block := range frags {
		if len(block) > 0 {
			df.Rows += block[0].Rows()
		}
		for _, f := range block {
			md := f.Footer()
			for k := 1; k < len(md.Schema); k++ {
				id, ok := ids[md.Schema[k].Name]
				if !ok {
					return nil, DataFile{}, fmt.Errorf("column %q of %s has no Iceberg field id", md.Schema[k].Name, f.Key)
				}
				md.Schema[k].FieldID = int32(id)
			}
			for _, rg := range md.RowGroups {
				for k, c := range rg.Columns {
					e := md.Schema[k+1]
					m := df.Columns[int(e.FieldID)]
					m.add(e, c.MetaData)
					df.Columns[int(e.FieldID)] = m
				}
			}
		}
	}
	sections, err := parquet.Assemble(frags, kv)
	if err != nil {
		return nil, DataFile{}, err
	}
	for i, sec := range sections {
		// The date fragments live in memory: their bytes go as they are.
		if data, ok := dateFrags[sec.Key]; ok {
			sections[i] = storage.Section{Data: data[sec.Offset : sec.Offset+sec.Length]}
		}
	}
	for _, s := range sections {
		df.Bytes += s.Size()
	}
	for id, m := range df.Columns {
		df.Columns[id] = m.truncated()
	}
	return sections, df, nil
}

// dateFragmentPrefix names the in-memory date fragments; no key of a
// bucket starts so.
const dateFragmentPrefix = "\x00date-fragment/"

// withDateColumn puts before every block a fragment of the date column,
// with the block's row groups and rows, written by Sluice's writer. It
// returns the blocks and the fragments' bytes by key.
func withDateColumn(ctx context.Context, blocks [][]*parquet.Fragment, date string) ([][]*parquet.Fragment, map[string][]byte, error) {
	mem := memstore.New()
	data := map[string][]byte{}
	out := make([][]*parquet.Fragment, len(blocks))
	for i, block := range blocks {
		if len(block) == 0 {
			out[i] = block
			continue
		}
		var buf bytes.Buffer
		w := parquet.NewWriter(&buf, []parquet.Column{{Name: DateColumn, Type: parquet.String, FieldID: dateFieldID}}, parquet.Options{})
		for _, rg := range block[0].Footer().RowGroups {
			v := parquet.NewValues(parquet.String)
			v.Grow(int(rg.NumRows), int(rg.NumRows), len(date)*int(rg.NumRows))
			for range rg.NumRows {
				v.AppendString([]byte(date))
			}
			if err := w.WriteRowGroup([]*parquet.Values{v}); err != nil {
				return nil, nil, fmt.Errorf("the date column: %w", err)
			}
		}
		if err := w.Close(); err != nil {
			return nil, nil, fmt.Errorf("the date column: %w", err)
		}
		key := fmt.Sprintf("%s%05d", dateFragmentPrefix, i)
		if err := mem.Put(ctx, key, bytes.NewReader(buf.Bytes())); err != nil {
			return nil, nil, err
		}
		f, err := parquet.ReadFragment(ctx, mem, key, int64(buf.Len()))
		if err != nil {
			return nil, nil, fmt.Errorf("the date column: %w", err)
		}
		data[key] = buf.Bytes()
		out[i] = append([]*parquet.Fragment{f}, block...)
	}
	return out, data, nil
}

func (m *ColumnMetrics) add(e pqformat.SchemaElement, md pqformat.ColumnMetaData) {
	st := md.Statistics
	m.Bytes += md.TotalCompressedSize
	m.Values += md.NumValues
	m.Nulls += st.NullCount
	if md.NumValues == st.NullCount {
		return // all null: bounds nothing
	}
	if st.MinValue == nil || st.MaxValue == nil {
		m.unbounded = true // a chunk kept no bounds (too long): the file has none
		return
	}
	t, _ := e.Type.Get()
	if m.Lower == nil || compare(t, st.MinValue, m.Lower) < 0 {
		m.Lower = bytes.Clone(st.MinValue)
	}
	if m.Upper == nil || compare(t, st.MaxValue, m.Upper) > 0 {
		m.Upper = bytes.Clone(st.MaxValue)
	}
}

// truncated drops unknown bounds and cuts long string ones.
func (m ColumnMetrics) truncated() ColumnMetrics {
	if m.unbounded {
		m.Lower, m.Upper = nil, nil
	}
	if len(m.Lower) > boundPrefix {
		n := boundPrefix
		for n > 0 && !utf8.RuneStart(m.Lower[n]) {
			n--
		}
		m.Lower = m.Lower[:n]
	}
	if len(m.Upper) > boundPrefix {
		m.Upper = nil
	}
	return m
}

// compare orders two PLAIN-encoded values of physical type t.
func compare(t pqformat.Type, a, b []byte) int {
	switch t {
	case pqformat.ByteArray:
		return bytes.Compare(a, b)
	case pqformat.Double:
		return cmp.Compare(math.Float64frombits(binary.LittleEndian.Uint64(a)), math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case pqformat.Boolean:
		return cmp.Compare(a[0], b[0])
	}
	return cmp.Compare(int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b)))
}
