// Package icetabletest reads tables for tests: an Iceberg table's rows
// through iceberg-go's scan, a Hive output's through parquet-go, as the
// same text so that they compare row for row.
package icetabletest

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	pq "github.com/parquet-go/parquet-go"

	"sluice/pipeline/icetable"
	"sluice/pipeline/storage"
)

// Rows are a table's rows by message id, each column's value as text;
// null values are left out. A Hive file's rows get the date of its
// partition folder as column date, as the Iceberg table has it.
type Rows map[string]map[string]string

func (rs Rows) add(t testing.TB, m map[string]string) {
	t.Helper()
	id := m["message_id"]
	if _, dup := rs[id]; dup {
		t.Errorf("message id %s twice", id)
	}
	rs[id] = m
}

// Scan reads tb's rows at snapshot (0: the current one) with iceberg-go.
func Scan(t testing.TB, tb *icetable.Table, snapshot int64) Rows {
	t.Helper()
	ctx := context.Background()
	tbl, err := tb.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var opts []table.ScanOption
	if snapshot != 0 {
		opts = append(opts, table.WithSnapshotID(snapshot))
	}
	at, err := tbl.Scan(opts...).ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	rows := Rows{}
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			m := map[string]string{}
			for c, f := range rec.Schema().Fields() {
				if col := rec.Column(c); !col.IsNull(i) {
					m[f.Name] = arrowText(t, col, i)
				}
			}
			rows.add(t, m)
		}
	}
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func arrowText(t testing.TB, col arrow.Array, i int) string {
	switch a := col.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Timestamp:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	}
	t.Fatalf("column of type %s", col.DataType())
	return ""
}

// ParquetFiles reads the rows of Parquet files (a Hive output's).
func ParquetFiles(t testing.TB, b storage.Reader, keys []string) Rows {
	t.Helper()
	rows := Rows{}
	for _, k := range keys {
		rc, err := b.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		f, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		cols := f.Schema().Columns()
		date := ""
		for _, seg := range strings.Split(k, "/") {
			if d, ok := strings.CutPrefix(seg, "date="); ok {
				date = d
			}
		}
		r := pq.NewReader(f)
		buf := make([]pq.Row, 256)
		for {
			n, err := r.ReadRows(buf)
			for _, row := range buf[:n] {
				m := map[string]string{}
				if date != "" {
					m[icetable.DateColumn] = date
				}
				for _, v := range row {
					if !v.IsNull() {
						m[cols[v.Column()][0]] = parquetText(v)
					}
				}
				rows.add(t, m)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
	}
	return rows
}

func parquetText(v pq.Value) string {
	switch v.Kind() {
	case pq.Boolean:
		return strconv.FormatBool(v.Boolean())
	case pq.Int64:
		return strconv.FormatInt(v.Int64(), 10)
	case pq.Double:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64)
	}
	return string(v.ByteArray())
}

// Same fails t unless got holds exactly want's rows, value for value.
func Same(t testing.TB, what string, got, want Rows) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	bad := 0
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("%s: row %s missing", what, id)
			bad++
		}
		for c, v := range w {
			if gv, has := g[c]; ok && (!has || gv != v) {
				t.Errorf("%s: row %s column %s = %q (present %v), want %q", what, id, c, gv, has, v)
				bad++
			}
		}
		for c, v := range g {
			if _, has := w[c]; !has {
				t.Errorf("%s: row %s has %s = %q, the wanted row has none", what, id, c, v)
				bad++
			}
		}
		if bad >= 5 {
			t.Fatalf("%s: more differences not shown", what)
		}
	}
}
