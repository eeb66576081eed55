package parquet

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"unsafe"

	"github.com/axiomhq/hyperloglog"
	"github.com/cespare/xxhash/v2"
)

// Dictionary encoding. A String or Int64 column chunk is dictionary-encoded
// when its values repeat enough to pay for it: each value stored once and a
// few bits a row, as DuckDB and parquet-java write repetitive columns. A
// column of unique values (message ids, millisecond timestamps as text)
// would only pay for a dictionary that does not shrink it, and building a
// dictionary costs a hash lookup per value, which is only worth it when
// values recur at least minRepetition times on average.
//
// The decision reads a sample, every sampleStep-th value: a HyperLogLog
// sketch counts its distinct values, and how often a value recurs in the
// chunk follows from how often it recurs in the sample: for values that
// occur k times in the chunk, a share f of its values holds on average
// f*k / (1 - e^(-f*k)) copies of each value it holds at all.
const (
	sampleStep    = 4
	minSample     = 4096
	minRepetition = 2
	// dictionaryBudget bounds a chosen column's estimated dictionary
	// (distinct values x their average length), so that dictionaries stay
	// well within a task's memory; maxDictionaryBytes is what a built one
	// may hold before the chunk is written plain after all.
	dictionaryBudget   = 3 << 20
	maxDictionaryBytes = 4 << 20
)

// chooseDictionary tells whether v's chunk should be dictionary-encoded.
func chooseDictionary(v *Values) bool {
	if v.Type != String && v.Type != Int64 {
		return false
	}
	n := v.count()
	if n == 0 {
		return false
	}
	step := 1
	if n >= sampleStep*minSample {
		step = sampleStep
	}
	sk := hyperloglog.NewNoSparse() // dense: the estimate depends on the set alone
	var sampled, size int64
	for i := 0; i < n; i += step {
		var h uint64
		if v.Type == String {
			b := v.StringAt(i)
			h = xxhash.Sum64(b)
			size += int64(len(b))
		} else {
			h = xxhash.Sum64(unsafe.Slice((*byte)(unsafe.Pointer(&v.Ints[i])), 8))
			size += 8
		}
		sk.InsertHash(h)
		sampled++
	}
	distinct := max(float64(sk.Estimate()), 1)
	k := repetition(float64(sampled)/distinct, 1/float64(step))
	avg := float64(size) / float64(sampled)
	return k >= minRepetition && float64(n)/k*avg <= dictionaryBudget
}

// repetition inverts copies = f*k / (1 - e^(-f*k)): the times a value
// recurs in the chunk when a share f of its values holds copies of each
// value it holds. copies grows with k from 1, so bisection finds it.
func repetition(copies, f float64) float64 {
	if f >= 1 {
		return copies
	}
	if copies <= 1 {
		return 0
	}
	expected := func(k float64) float64 {
		x := f * k
		return x / -math.Expm1(-x)
	}
	lo, hi := 0.0, 1.0
	for expected(hi) < copies && hi < 1e9 {
		hi *= 2
	}
	for range 60 {
		mid := (lo + hi) / 2
		if expected(mid) < copies {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// dictionary is a chunk's dictionary: its distinct values sorted, and the
// index of every non-null value in it. Sorted, a page's smallest and
// largest value are those of its smallest and largest index.
type dictionary struct {
	idx  []int32
	ints []int64 // Int64: the sorted values
	strs []int32 // String: the sorted values, as the position of one copy in Values
	size int     // the dictionary page's PLAIN bytes
}

// buildDictionary builds v's dictionary; ok is false when it would be
// larger than maxDictionaryBytes.
func buildDictionary(v *Values, d *dictionary) (ok bool) {
	n := v.count()
	d.idx = slices.Grow(d.idx[:0], n)[:n]
	if v.Type == Int64 {
		ids := make(map[int64]int32)
		var first []int64
		for i, x := range v.Ints {
			id, ok := ids[x]
			if !ok {
				id = int32(len(first))
				ids[x] = id
				first = append(first, x)
			}
			d.idx[i] = id
		}
		d.size = 8 * len(first)
		if d.size > maxDictionaryBytes {
			return false
		}
		order := sortedOrder(len(first), func(a, b int32) int { return cmp.Compare(first[a], first[b]) })
		d.ints = d.ints[:0]
		for _, o := range order {
			d.ints = append(d.ints, first[o])
		}
		d.remap(order)
		return true
	}
	ids := make(map[string]int32)
	var first []int32 // position of the first copy of each distinct value
	d.size = 0
	for i := range n {
		b := v.StringAt(i)
		// The key points into v.Bytes, which outlives the map and does
		// not change while it is in use.
		key := unsafe.String(unsafe.SliceData(b), len(b))
		id, ok := ids[key]
		if !ok {
			id = int32(len(first))
			ids[key] = id
			first = append(first, int32(i))
			d.size += 4 + len(b)
			if d.size > maxDictionaryBytes {
				return false
			}
		}
		d.idx[i] = id
	}
	order := sortedOrder(len(first), func(a, b int32) int { return bytes.Compare(v.StringAt(int(first[a])), v.StringAt(int(first[b]))) })
	d.strs = d.strs[:0]
	for _, o := range order {
		d.strs = append(d.strs, first[o])
	}
	d.remap(order)
	return true
}

// sortedOrder returns 0..n-1 sorted by less.
func sortedOrder(n int, compare func(a, b int32) int) []int32 {
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, compare)
	return order
}

// remap renumbers the indexes after the distinct values were sorted into
// order (order[new] = old).
func (d *dictionary) remap(order []int32) {
	rank := make([]int32, len(order))
	for nw, old := range order {
		rank[old] = int32(nw)
	}
	for i, id := range d.idx {
		d.idx[i] = rank[id]
	}
}

// len is the number of distinct values.
func (d *dictionary) len(t Type) int {
	if t == Int64 {
		return len(d.ints)
	}
	return len(d.strs)
}
