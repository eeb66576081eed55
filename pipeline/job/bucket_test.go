package job

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"

	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
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

// TestDateSplitIntoBuckets splits each date into many files and checks
// the table against the one-file-per-date build of the same input, row for
// row: the same keys, each once, with the same winning copy.
func TestDateSplitIntoBuckets(t *testing.T) {
	t.Parallel()
	in := duplicatedData(t)
	w := window(t, "2026-10-30", "2026-10-31")
	spec := testSpec()
	spec.ShardBytes = 1 // one object per shard: a key's copies are in many shards
	one, many := memstore.New(), memstore.New()
	resOne := runJob(t, newStep(in, memstore.New(), one, spec, w))
	spec.TargetFileBytes = 2 << 10
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

func TestCutRanges(t *testing.T) {
	t.Parallel()
	even := make([]int64, intermediate.VBuckets)
	for i := range even {
		even[i] = 100
	}
	skewed := slices.Clone(even)
	skewed[0] = 1 << 20 // one heavy bucket
	sparse := make([]int64, intermediate.VBuckets)
	sparse[500] = 7
	for _, c := range []struct {
		name string
		in   []int64
		n    int
	}{{"even", even, 1}, {"even", even, 7}, {"even", even, 1024}, {"skewed", skewed, 5}, {"sparse", sparse, 3}} {
		r := cutRanges(c.in, c.n)
		if len(r) != c.n || r[0][0] != 0 || r[len(r)-1][1] != len(c.in) {
			t.Errorf("%s/%d: %v", c.name, c.n, r)
			continue
		}
		for i := range r {
			if r[i][0] >= r[i][1] || (i > 0 && r[i][0] != r[i-1][1]) {
				t.Errorf("%s/%d: range %d is %v", c.name, c.n, i, r[i])
			}
		}
		if c.name == "even" && c.n == 7 {
			for _, x := range r {
				if n := x[1] - x[0]; n < 146 || n > 147 {
					t.Errorf("even/7: range of %d buckets", n)
				}
			}
		}
	}
}

// The plan spreads the input over the live fleet, within bounds.
func TestShardBytes(t *testing.T) {
	t.Parallel()
	s := &Step{Spec: transform.DefaultSpec()} // shard_bytes 64 MiB
	for _, c := range []struct {
		input int64
		slots int
		want  int64
	}{
		{100 << 20, 0, DefaultMinShardBytes},  // 16 tasks of 6.25 MiB -> the 8 MiB floor
		{1 << 30, 1, 64 << 20},                // 16 tasks
		{1 << 30, 8, 32 << 20},                // 32 tasks
		{100 << 30, 64, 64 << 20},             // capped by shard_bytes
		{1 << 20, 4, DefaultMinShardBytes},    // small input: one small shard
		{8 << 30, 1000, DefaultMinShardBytes}, // a huge fleet: not below the floor
	} {
		s.PlanOptions.Slots = c.slots
		if got := s.shardBytes(c.input); got != c.want {
			t.Errorf("input %d MiB, %d slots: shards of %d MiB, want %d", c.input>>20, c.slots, got>>20, c.want>>20)
		}
	}
}
