package table_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"sluice/pipeline/civil"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/table"
)

// Replacing a Hive partition leaves its folder holding the new files
// alone, other folders untouched; a retry removes nothing more.
func TestHiveReplacePartition(t *testing.T) {
	ctx := context.Background()
	out := memstore.New()
	folder := "year=2026/month=3/date=2026-03-08/"
	for _, k := range []string{folder + "part-00000-old.parquet", folder + "part-00000-new.parquet", folder + "part-00001-new.parquet", "year=2026/month=3/date=2026-03-09/part-00000-old.parquet"} {
		if err := out.Put(ctx, k, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	f, err := table.ByName("hive")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := civil.Parse("2026-03-08")
	files := []string{folder + "part-00000-new.parquet", folder + "part-00001-new.parquet"}
	removed, err := f.ReplacePartition(ctx, out, d, folder, files)
	if err != nil || !slices.Equal(removed, []string{folder + "part-00000-old.parquet"}) {
		t.Fatalf("removed %v, %v; want the old file", removed, err)
	}
	var left []string
	for k := range out.Objects() {
		left = append(left, k)
	}
	slices.Sort(left)
	want := append(slices.Clone(files), "year=2026/month=3/date=2026-03-09/part-00000-old.parquet")
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	if removed, err := f.ReplacePartition(ctx, out, d, folder, files); err != nil || len(removed) != 0 {
		t.Errorf("retry removed %v, %v", removed, err)
	}
	if _, err := table.ByName("delta"); err == nil {
		t.Error("an unknown table format is accepted")
	}
}
