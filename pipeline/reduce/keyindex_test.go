package reduce

import (
	"context"
	"slices"
	"testing"
)

// Two keys whose fingerprints collide stay two rows: the index falls back
// to the keys themselves, so deduplication is exact however unlikely a
// collision of 64-bit fingerprints is.
func TestDedupeFingerprintCollision(t *testing.T) {
	rows := []rowRef{
		{id: "a", fp: 7, us: 30, line: 1},
		{id: "b", fp: 7, us: 10, line: 2}, // another key, the same fingerprint
		{id: "a", fp: 7, us: 20, line: 0}, // a's smaller copy
		{id: "c", fp: 9, us: 40, line: 3},
		{id: "b", fp: 7, us: 50, line: 9}, // b's larger copy
	}
	r := &reducer{ctx: context.Background()}
	keep, err := r.dedupe(rows, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range keep {
		got = append(got, rows[i].id)
	}
	// One row a key, the smallest (shard, object, line) copy, by time.
	if want := []string{"b", "a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("kept %v (rows %v), want %v", got, keep, want)
	}
	if rows[keep[1]].line != 0 || rows[keep[0]].line != 2 {
		t.Errorf("winners: a line %d, b line %d; want 0 and 2", rows[keep[1]].line, rows[keep[0]].line)
	}
	k := newKeyIndex(rows)
	k.set(7, "a", 0)
	k.set(7, "b", 1)
	k.delete(7, "a")
	if _, ok := k.get(7, "a"); ok {
		t.Error("a deleted, still found")
	}
	if j, ok := k.get(7, "b"); !ok || j != 1 {
		t.Errorf("b: %d %v", j, ok)
	}
}
