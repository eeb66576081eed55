package job

import (
	"slices"
	"testing"

	"sluice/pipeline/intermediate"
	"sluice/pipeline/transform"
)

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
