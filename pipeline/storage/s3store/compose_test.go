package s3store

import (
	"math/rand/v2"
	"testing"

	"sluice/pipeline/storage"
)

// Every plan keeps the bytes in order, gives every part but the last at
// least the minimum size, copies no range longer than the maximum, and
// copies on the server every range that is long enough to be a part of
// its own, but for the head a short part before it borrows.
func TestPlanParts(t *testing.T) {
	t.Parallel()
	const minPart, maxCopy = 100, 350
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		var sections []storage.Section
		for i := range rng.IntN(8) {
			if rng.IntN(4) == 0 {
				sections = append(sections, storage.Section{Data: make([]byte, rng.IntN(150))})
				continue
			}
			n := int64(rng.IntN(900))
			if rng.IntN(3) == 0 {
				n = int64(rng.IntN(60))
			}
			sections = append(sections, storage.Section{Key: string(rune('a' + i)), Offset: int64(rng.IntN(50)), Length: n})
		}
		parts := planParts(sections, minPart, maxCopy)
		// Flatten both into (key, offset) per byte... by ranges.
		type piece struct {
			key      string
			off, len int64
			data     bool
		}
		var want, got []piece
		for _, s := range sections {
			if s.Size() > 0 {
				want = append(want, piece{s.Key, s.Offset, s.Size(), s.Key == ""})
			}
		}
		var copied int64
		for i, p := range parts {
			if i < len(parts)-1 && p.size < minPart {
				t.Fatalf("trial %d: part %d of %d has %d bytes", trial, i, len(parts), p.size)
			}
			var sum int64
			if p.copy != nil {
				if p.copy.Length > maxCopy || p.copy.Length < minPart && i < len(parts)-1 {
					t.Fatalf("trial %d: copy part of %d bytes", trial, p.copy.Length)
				}
				got = append(got, piece{p.copy.Key, p.copy.Offset, p.copy.Length, false})
				sum = p.copy.Length
				copied += sum
			}
			for _, s := range p.upload {
				got = append(got, piece{s.Key, s.Offset, s.Size(), s.Key == ""})
				sum += s.Size()
			}
			if sum != p.size {
				t.Fatalf("trial %d: part %d says %d bytes, holds %d", trial, i, p.size, sum)
			}
		}
		// Merge adjacent pieces of one source to compare with the input.
		merge := func(ps []piece) []piece {
			var out []piece
			for _, p := range ps {
				if n := len(out); n > 0 && !p.data && !out[n-1].data && out[n-1].key == p.key && out[n-1].off+out[n-1].len == p.off {
					out[n-1].len += p.len
					continue
				}
				out = append(out, p)
			}
			return out
		}
		w, g := merge(want), merge(got)
		if len(w) != len(g) {
			t.Fatalf("trial %d: %v planned as %v", trial, w, g)
		}
		for i := range w {
			if w[i] != g[i] {
				t.Fatalf("trial %d: %v planned as %v", trial, w, g)
			}
		}
		var long int64
		for _, s := range sections {
			if s.Key != "" && s.Length >= 2*minPart {
				long += s.Length - minPart // all but at most a borrowed head
			}
		}
		if copied < long {
			t.Fatalf("trial %d: %d bytes copied on the server, want at least %d", trial, copied, long)
		}
	}
}
