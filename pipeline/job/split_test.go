package job_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"

	"sluice/pipeline/storage/memstore"
)

// duplicatedData writes events of two dates whose keys each have several
// copies: in other objects, other sources, and on the other date, so that
// copies of one key meet only in its bucket's reduce.
func duplicatedData(t testing.TB) *memstore.Bucket {
	in := memstore.New()
	rng := rand.New(rand.NewPCG(7, 7))
	for _, src := range []string{"ios", "android"} {
		for _, day := range []string{"2026-10-30", "2026-10-31"} {
			for f := range 3 {
				var lines []string
				for i := range 120 {
					id := fmt.Sprintf("k%03d", rng.IntN(400))
					hour := rng.IntN(24)
					date := []string{"2026-10-30", "2026-10-31"}[rng.IntN(2)]
					ts := fmt.Sprintf("%sT%02d:%02d:00Z", date, hour, i%60)
					lines = append(lines, ev(id, ts, fmt.Sprintf(`"copy":"%s-%s-%d-%d"`, src, day, f, i)))
				}
				put(t, in, dayFolder(src, day)+fmt.Sprintf("part-%d.gz", f), gz(lines...))
			}
		}
	}
	return in
}

// TestDateSplitIntoFiles splits each date into many files and checks
// the table against the one-file-per-date build of the same input, row for
// row: the same keys, each once, with the same winning copy.
func TestDateSplitIntoFiles(t *testing.T) {
	t.Parallel()
	in := duplicatedData(t)
	w := window(t, "2026-10-30", "2026-10-31")
	spec := testSpec()
	spec.ShardBytes = 1 // one object per shard: a key's copies are in many shards
	one, many := memstore.New(), memstore.New()
	resOne := runJob(t, newStep(in, memstore.New(), one, spec, w))
	spec.TargetFileBytes = 1 << 10
	resMany := runJob(t, newStep(in, memstore.New(), many, spec, w))
	if resOne.shards < 12 {
		t.Fatalf("%d shards, want one per object", resOne.shards)
	}
	for _, d := range []string{"2026-10-30", "2026-10-31"} {
		a, b := readPartition(t, one, d), readPartition(t, many, d)
		if a.files != 1 || b.files < 4 {
			t.Errorf("%s: %d and %d files, want 1 and several", d, a.files, b.files)
		}
		if resMany.summary.Files[d] != b.files {
			t.Errorf("%s: summary says %d files, the folder holds %d", d, resMany.summary.Files[d], b.files)
		}
		ra, rb := a.byID(t), b.byID(t)
		if len(ra) == 0 || len(ra) != len(rb) {
			t.Fatalf("%s: %d and %d rows", d, len(ra), len(rb))
		}
		for id, row := range ra {
			other, ok := rb[id]
			if !ok {
				t.Errorf("%s: %s missing from the split build", d, id)
				continue
			}
			for _, c := range slices.Sorted(maps.Keys(row)) {
				if !parquet.Equal(row[c], other[c]) {
					t.Errorf("%s %s: %s is %v in one file, %v split", d, id, c, row[c], other[c])
				}
			}
		}
	}
	if resOne.summary.Duplicates != resMany.summary.Duplicates || resOne.summary.RowsWritten != resMany.summary.RowsWritten {
		t.Errorf("one file: %d rows %d duplicates; split: %d rows %d duplicates",
			resOne.summary.RowsWritten, resOne.summary.Duplicates, resMany.summary.RowsWritten, resMany.summary.Duplicates)
	}
	if resMany.summary.Duplicates == 0 {
		t.Error("the test data has no duplicates")
	}
}

// TestRebuildWithFewerFiles rebuilds a partition that had more files than
// the new build makes: the old files are all gone, the new ones hold every
// row once.
func TestRebuildWithFewerFiles(t *testing.T) {
	t.Parallel()
	in, out := duplicatedData(t), memstore.New()
	w := window(t, "2026-10-30", "2026-10-30")
	spec := testSpec()
	spec.TargetFileBytes = 2 << 10
	runJob(t, newStep(in, memstore.New(), out, spec, w))
	before := partitionFiles(t, out, "2026-10-30")
	rows := len(readPartition(t, out, "2026-10-30").rows)
	if len(before) < 3 {
		t.Fatalf("first build made %d files", len(before))
	}
	spec.TargetFileBytes = 256 << 20
	s := newStep(in, memstore.New(), out, spec, w)
	s.RunID, s.Force = "run-rebuild", true
	res := runJob(t, s)
	after := partitionFiles(t, out, "2026-10-30")
	if len(after) != 1 || slices.Contains(before, after[0]) {
		t.Errorf("after the rebuild: %v (before: %v)", after, before)
	}
	if tb := readPartition(t, out, "2026-10-30"); len(tb.rows) != rows || len(tb.byID(t)) != rows {
		t.Errorf("%d rows after the rebuild, %d before", len(tb.rows), rows)
	}
	if res.summary.Removed != len(before) {
		t.Errorf("removed %d files, want %d", res.summary.Removed, len(before))
	}
}
