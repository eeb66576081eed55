package parquet

import (
	"math"
	"testing"
)

// repetition recovers how often values recur in a chunk from how often
// they recur in a share of its values.
func TestRepetition(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ k, f float64 }{{20, 0.25}, {2, 0.25}, {1.4, 0.25}, {50, 0.05}, {3, 1}, {1.01, 0.5}} {
		x := c.f * c.k
		copies := x / -math.Expm1(-x)
		if c.f == 1 {
			copies = c.k
		}
		if got := repetition(copies, c.f); math.Abs(got-c.k) > 1e-6*c.k {
			t.Errorf("k=%v f=%v: %v copies in the sample give k=%v", c.k, c.f, copies, got)
		}
	}
	if got := repetition(1, 0.25); got != 0 {
		t.Errorf("no repeats in the sample: k=%v, want 0", got)
	}
}
