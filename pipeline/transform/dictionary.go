package transform

import (
	"math"

	"github.com/axiomhq/hyperloglog"
	"github.com/cespare/xxhash/v2"
)

// Dictionary encoding. A string or integer column of a Parquet file is
// dictionary-encoded when its values repeat enough to pay for it: each value
// stored once a row group and a few bits a row, as DuckDB and parquet-mr
// write repetitive columns. A column of unique values (message ids,
// millisecond timestamps as text) would only pay for a dictionary that does
// not shrink it, and every dictionary costs a hash lookup per value when
// written, which is only worth it when values recur at least
// minRepetition times on average.
//
// The decision reads a sample: the kept rows of the file's first virtual
// buckets, about sampleShare of the file (and at least minSample rows).
// Keys fall in virtual buckets by hash, so the sample is a random subset of
// the file's rows, the same however the reduce is cut into chunks (and so
// the same file either way). A HyperLogLog sketch per column counts the
// sample's distinct values; how often a value recurs in the whole file
// follows from how often it recurs in the sample: for values that occur k
// times in the file, a share f of its rows holds on average
// f*k / (1 - e^(-f*k)) copies of each value it holds at all. Should a column
// turn out less repetitive than judged, its dictionary stops at
// maxDictionaryBytes and the rest of its row group is written plain.
const (
	sampleShare        = 0.25
	minSample          = 4096
	minRepetition      = 2
	maxDictionaryBytes = 4 << 20
	// dictionaryBudget bounds a chosen column's estimated dictionary
	// (distinct values x their average length), so that dictionaries stay
	// well within the worker's memory.
	dictionaryBudget = 3 << 20
)

type dictionaryChooser struct {
	pd       *partitionData
	fileRows int64 // rows read for the file, kept or not
	sampled  int64 // rows read in the sample's buckets
	// Per column; nil sketches for columns that cannot have a dictionary.
	sketches []*hyperloglog.Sketch
	values   []int64 // non-null values in the sample
	bytes    []int64 // their encoded bytes, for the average length
	kept     int64   // kept rows in the sample
}

func newDictionaryChooser(pd *partitionData, fileRows, sampleRows int64) *dictionaryChooser {
	n := len(pd.cols)
	d := &dictionaryChooser{pd: pd, fileRows: fileRows, sampled: sampleRows, sketches: make([]*hyperloglog.Sketch, n),
		values: make([]int64, n), bytes: make([]int64, n)}
	for c, col := range pd.cols {
		if col.Type == TypeString || col.Type == TypeBigint {
			d.sketches[c] = hyperloglog.NewNoSparse() // dense: the estimate depends on the set alone
		}
	}
	return d
}

// addRow adds a kept row of the sample; it reads only the payloads of the
// fields, without converting them, as counting needs no more.
func (d *dictionaryChooser) addRow(r *rowRef) error {
	d.kept++
	colMap := d.pd.colMaps[r.file]
	br := byteReader{b: r.fields}
	n := br.uvarint()
	for j := uint64(0); j < n && br.err == nil; j++ {
		id := br.uvarint()
		kind := br.byte()
		if br.err != nil || id >= uint64(len(colMap)) {
			return errCorrupt
		}
		payload := br.b
		br.skipField(kind)
		c := colMap[id]
		if c < 0 || kind == kindNull || d.sketches[c] == nil {
			continue
		}
		payload = payload[:len(payload)-len(br.b)]
		d.values[c]++
		d.bytes[c] += int64(len(payload))
		d.sketches[c].InsertHash(xxhash.Sum64(payload) + uint64(kind))
	}
	return br.err
}

// columns returns which columns to dictionary-encode, given the file's kept
// rows.
func (d *dictionaryChooser) columns(keptAll int64) []bool {
	dict := make([]bool, len(d.pd.cols))
	if d.kept == 0 || d.sampled == 0 {
		return dict
	}
	f := float64(d.sampled) / float64(d.fileRows)
	for c, sk := range d.sketches {
		if sk == nil || d.values[c] == 0 {
			continue
		}
		distinct := max(float64(sk.Estimate()), 1)
		copies := float64(d.values[c]) / distinct // per value held, in the sample
		k := fileRepetition(copies, f)
		valuesAll := float64(d.values[c]) * float64(keptAll) / float64(d.kept)
		avg := float64(d.bytes[c]) / float64(d.values[c])
		dict[c] = k >= minRepetition && valuesAll/k*avg <= dictionaryBudget
	}
	return dict
}

// fileRepetition inverts copies = f*k / (1 - e^(-f*k)): the times a value
// recurs in the file when a share f of its rows holds copies of each value
// it holds. copies grows with k from 1, so bisection finds it.
func fileRepetition(copies, f float64) float64 {
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
