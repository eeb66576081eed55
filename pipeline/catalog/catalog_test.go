package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"sluice/pipeline/storage/memstore"
)

func TestTypeStringRoundTrip(t *testing.T) {
	t.Parallel()
	typ := StructOf(
		Column{"name", Prim(KindString)},
		Column{"version", Prim(KindString)},
		Column{"products", ArrayOf(StructOf(Column{"price", Prim(KindDouble)}, Column{"Product Name", Prim(KindString)}))},
		Column{"tags", ArrayOf(Prim(KindString))},
		Column{"empty", StructOf()},
	)
	want := "struct<name:string,version:string,products:array<struct<price:double,`Product Name`:string>>,tags:array<string>,empty:struct<>>"
	if got := typ.String(); got != want {
		t.Fatalf("String() = %s\nwant        %s", got, want)
	}
	back, err := ParseType(want)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(typ) {
		t.Fatalf("round trip changed the type: %s", back)
	}
	for _, bad := range []string{"", "struct<a>", "array<string", "map<string,string>", "int extra"} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) succeeded", bad)
		}
	}
}

func testTable(cols ...Column) Table {
	return Table{Database: "raw", Name: "ios", Location: "s3://b/segment-logs/ios/", Format: "json",
		Compression: "gzip", Columns: cols, PartitionKeys: []Column{{"received_day", Prim(KindDate)}}}
}

func TestPutTableVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(memstore.New())
	t1, changed, err := s.PutTable(ctx, testTable(Column{"a", Prim(KindInt)}))
	if err != nil || !changed || t1.Version != 1 {
		t.Fatalf("first put: %v changed=%v version=%d", err, changed, t1.Version)
	}
	// Unchanged: no-op.
	t2, changed, err := s.PutTable(ctx, testTable(Column{"a", Prim(KindInt)}))
	if err != nil || changed || t2.Version != 1 {
		t.Fatalf("same put: %v changed=%v version=%d", err, changed, t2.Version)
	}
	// Schema change.
	t3, changed, err := s.PutTable(ctx, testTable(Column{"a", Prim(KindBigint)}, Column{"b", Prim(KindString)}))
	if err != nil || !changed || t3.Version != 2 {
		t.Fatalf("changed put: %v changed=%v version=%d", err, changed, t3.Version)
	}
	// Metadata-only change keeps the version.
	m := testTable(Column{"a", Prim(KindBigint)}, Column{"b", Prim(KindString)})
	m.Conflicts = []Conflict{{Path: "a", Types: []string{"int", "string"}, Resolved: "string"}}
	t4, changed, err := s.PutTable(ctx, m)
	if err != nil || !changed || t4.Version != 2 {
		t.Fatalf("metadata put: %v changed=%v version=%d", err, changed, t4.Version)
	}
	// Stale version is refused.
	stale := testTable(Column{"z", Prim(KindString)})
	stale.Version = 1
	if _, _, err := s.PutTable(ctx, stale); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("stale put: %v", err)
	}
	hist, err := s.History(ctx, "raw", "ios")
	if err != nil || len(hist) != 2 || hist[0].Version != 1 || hist[1].Version != 2 {
		t.Fatalf("history: %v %+v", err, hist)
	}
	if c := hist[0].Columns[0]; c.Type.Kind != KindInt {
		t.Fatalf("history v1 column: %+v", c)
	}
	got, err := s.GetTable(ctx, "raw", "ios")
	if err != nil || got.Version != 2 || len(got.Conflicts) != 1 || len(got.Columns) != 2 {
		t.Fatalf("get: %v %+v", err, got)
	}
	if _, err := s.GetTable(ctx, "raw", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing table: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(memstore.New())
	var wg sync.WaitGroup
	// 8 tables, each extended by 10 concurrent updaters adding one column.
	for tb := range 8 {
		for c := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := s.UpdateTable(ctx, "raw", fmt.Sprintf("t%d", tb), func(t *Table) error {
					t.Format = "json"
					t.Columns = append(t.Columns, Column{fmt.Sprintf("c%d", c), Prim(KindString)})
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	tables, err := s.ListTables(ctx, "raw")
	if err != nil || len(tables) != 8 {
		t.Fatalf("list: %v %d", err, len(tables))
	}
	for _, tb := range tables {
		if len(tb.Columns) != 10 || tb.Version != 10 {
			t.Errorf("%s: %d columns, version %d; want 10, 10", tb.Name, len(tb.Columns), tb.Version)
		}
	}
}

func TestPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(memstore.New())
	parts := []Partition{
		{Values: []string{"2024", "3", "2024-03-10"}, Location: "x/", Files: 2, Bytes: 100, Rows: 10},
		{Values: []string{"2024", "3", "2024-03-09"}, Location: "y/", Files: 1, Bytes: 50},
		{Values: []string{"a/b=c", "", "%"}, Location: "z/"},
	}
	n, err := s.AddPartitions(ctx, "out", "daily", parts)
	if err != nil || n != 3 {
		t.Fatalf("add: %v %d", err, n)
	}
	parts[0].Files = 3
	n, err = s.AddPartitions(ctx, "out", "daily", parts)
	if err != nil || n != 0 {
		t.Fatalf("re-add: %v %d", err, n)
	}
	got, err := s.ListPartitions(ctx, "out", "daily")
	if err != nil || len(got) != 3 {
		t.Fatalf("list: %v %+v", err, got)
	}
	if got[0].Values[2] != "2024-03-09" || got[1].Files != 3 || got[2].Values[0] != "a/b=c" || got[2].Values[1] != "" {
		t.Fatalf("partitions: %+v", got)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tb := testTable(
		Column{"anonymousId", Prim(KindString)},
		Column{"context", StructOf(Column{"app", StructOf(Column{"name", Prim(KindString)})})},
		Column{"products", ArrayOf(StructOf(Column{"price", Prim(KindDouble)}))},
	)
	tb.Version = 3
	tb.Conflicts = []Conflict{{Path: "properties.price", Types: []string{"int", "double"}, Resolved: "double", Widened: true, Key: "f.gz"}}
	var b strings.Builder
	err := Describe(&b, tb, []Partition{{Values: []string{"2024-03-09"}, Files: 4, Bytes: 3 << 20, Rows: 7}})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"raw.ios", "version 3", "      name", "received_day", "received_day=2024-03-09", "3.0 MiB", "properties.price: int, double -> double (widened"} {
		if !strings.Contains(out, want) {
			t.Errorf("Describe output lacks %q:\n%s", want, out)
		}
	}
	t.Log("\n" + out)
}
