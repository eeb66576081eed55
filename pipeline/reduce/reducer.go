package reduce

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"unsafe"

	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
)

// reducer is the state of one Slice.
type reducer struct {
	ctx       context.Context
	scratch   storage.Reader
	published storage.Reader
	keys      *intermediate.KeysWriter // nil: no keys file
	in        SliceInput
	read      *intermediate.Reader
	idsBuf    []byte
	temps     []*os.File
}

func (r *reducer) close() {
	for _, f := range r.temps {
		f.Close()
		os.Remove(f.Name())
	}
}

func (r *reducer) tempFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "sluice-run-*")
	if err != nil {
		return nil, fmt.Errorf("create run file: %w", err)
	}
	r.temps = append(r.temps, f)
	return f, nil
}

// chunks cuts the virtual buckets [Lo, Hi) into consecutive ranges (offsets
// from Lo) whose rows fit budget in memory; a single bucket is never cut.
func (r *reducer) chunks(budget int64) [][2]int {
	n := r.in.Hi - r.in.Lo
	var out [][2]int
	start, size := 0, int64(0)
	for v := 0; v < n; v++ {
		var need int64
		for _, p := range r.in.Shards {
			_, _, raw, rows := p.Index.Span(v, v+1)
			need += RowCost(raw, rows)
		}
		if size > 0 && size+need > budget {
			out = append(out, [2]int{start, v})
			start, size = v, 0
		}
		size += need
	}
	return append(out, [2]int{start, n})
}

// load reads the rows of buckets [a, b) (offsets from Lo) of every part and
// returns them with the indexes of the rows kept, in output order.
func (r *reducer) load(a, b int) ([]rowRef, []int32, error) {
	var total int64
	for _, p := range r.in.Shards {
		_, _, _, rows := p.Index.Span(a, b)
		total += rows
	}
	rows := make([]rowRef, 0, total)
	for file, p := range r.in.Shards {
		sp := intermediate.SpanOf(p.Key, p.Index, a, b)
		data, err := r.read.Load(r.ctx, r.scratch, sp, nil)
		if err != nil {
			return nil, nil, err
		}
		for len(data) > 0 {
			row, rest, err := intermediate.ParseRow(data)
			if err != nil {
				return nil, nil, fmt.Errorf("read %s: %w", p.Key, err)
			}
			rows = append(rows, rowRef{
				shard: uint32(p.Shard), obj: uint32(row.Obj), line: row.Line, us: row.US, off: row.Off,
				fp: intermediate.KeyFingerprint(row.Key), vb: uint16(intermediate.VBucket(row.Key)),
				id: unsafe.String(unsafe.SliceData(row.Key), len(row.Key)), fields: row.Fields, file: int32(file),
			})
			data = rest
		}
		if err := r.ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
	keep, err := r.dedupe(rows, a, b)
	return rows, keep, err
}

// keyIndex finds rows by key: by the key's fingerprint, which is already
// in every row and hashes and compares as one word, and, for the rare key
// whose fingerprint another key of the slice has, by the key itself, so
// that deduplication stays exact.
type keyIndex struct {
	rows  []rowRef
	byFP  map[uint64]int32
	byKey map[string]int32 // fingerprint collisions only
}

func newKeyIndex(rows []rowRef) *keyIndex {
	return &keyIndex{rows: rows, byFP: make(map[uint64]int32, len(rows))}
}

func (k *keyIndex) get(fp uint64, key string) (int32, bool) {
	if j, ok := k.byFP[fp]; ok && k.rows[j].id == key {
		return j, true
	}
	if k.byKey != nil {
		j, ok := k.byKey[key]
		return j, ok
	}
	return 0, false
}

func (k *keyIndex) set(fp uint64, key string, i int32) {
	if j, ok := k.byFP[fp]; !ok || k.rows[j].id == key {
		k.byFP[fp] = i
		return
	}
	if k.byKey == nil {
		k.byKey = map[string]int32{}
	}
	k.byKey[key] = i
}

func (k *keyIndex) delete(fp uint64, key string) {
	if j, ok := k.byFP[fp]; ok && k.rows[j].id == key {
		delete(k.byFP, fp)
		return
	}
	delete(k.byKey, key)
}

func (k *keyIndex) len() int { return len(k.byFP) + len(k.byKey) }

// dedupe keeps, for every key, the copy with the smallest (shard, object,
// line), i.e. the smallest (object key, line), since shards are contiguous
// runs of objects in key order. Copies of the key that landed on other dates
// of the run count too: when one of them is smaller, the key is dropped
// here and kept there. It returns the kept rows in output order (rowCmp).
func (r *reducer) dedupe(rows []rowRef, a, b int) ([]int32, error) {
	best := newKeyIndex(rows)
	for i := range rows {
		row := &rows[i]
		j, ok := best.get(row.fp, row.id)
		if !ok || ordLess(row.shard, row.obj, row.line, rows[j].shard, rows[j].obj, rows[j].line) {
			best.set(row.fp, row.id, int32(i))
		}
	}
	for _, o := range r.in.Others {
		data, err := r.read.Load(r.ctx, r.scratch, intermediate.SpanOf(o.Key, o.Index, a, b), r.idsBuf)
		if err != nil {
			return nil, err
		}
		r.idsBuf = data // the next ids span reuses the memory
		for len(data) > 0 {
			id, rest, err := intermediate.ParseID(data)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", o.Key, err)
			}
			data = rest
			key := unsafe.String(unsafe.SliceData(id.Key), len(id.Key))
			fp := intermediate.KeyFingerprint(id.Key)
			j, ok := best.get(fp, key)
			if ok && ordLess(uint32(o.Shard), uint32(id.Obj), id.Line, rows[j].shard, rows[j].obj, rows[j].line) {
				best.delete(fp, key)
			}
		}
	}
	if err := r.dropPublished(best, a, b); err != nil {
		return nil, err
	}
	// Sort (timestamp, fingerprint, row) triples, side by side in memory,
	// and look at the rows' keys only for equal fingerprints: the same
	// order as rowCmp, at a fraction of the cache misses.
	type sortKey struct {
		us int64
		fp uint64
		i  int32
	}
	keys := make([]sortKey, 0, best.len())
	for _, i := range best.byFP {
		keys = append(keys, sortKey{rows[i].us, rows[i].fp, i})
	}
	for _, i := range best.byKey {
		keys = append(keys, sortKey{rows[i].us, rows[i].fp, i})
	}
	slices.SortFunc(keys, func(x, y sortKey) int {
		if x.us != y.us {
			return cmp.Compare(x.us, y.us)
		}
		if x.fp != y.fp {
			return cmp.Compare(x.fp, y.fp)
		}
		return strings.Compare(rows[x.i].id, rows[y.i].id)
	})
	keep := make([]int32, len(keys))
	for j, k := range keys {
		keep[j] = k.i
	}
	return keep, nil
}

// writeKeys adds the kept rows' keys to the keys file, by virtual bucket
// (within one, by fingerprint). rows are those of consecutive buckets
// following the ones written before.
func (r *reducer) writeKeys(rows []rowRef, keep []int32) error {
	if r.keys == nil {
		return nil
	}
	type vkey struct {
		vb uint16
		fp uint64
	}
	ks := make([]vkey, len(keep))
	for j, i := range keep {
		ks[j] = vkey{rows[i].vb, rows[i].fp}
	}
	slices.SortFunc(ks, func(x, y vkey) int {
		if x.vb != y.vb {
			return cmp.Compare(x.vb, y.vb)
		}
		return cmp.Compare(x.fp, y.fp)
	})
	for _, k := range ks {
		if err := r.keys.AddFingerprint(int(k.vb), k.fp); err != nil {
			return err
		}
	}
	return nil
}

// dropPublished removes from best the keys that partitions the run does
// not rebuild already hold (SliceInput.Published), in buckets [a, b)
// (offsets from Lo). Fingerprints are matched within their virtual
// bucket only (see intermediate.KeyFingerprint).
func (r *reducer) dropPublished(best *keyIndex, a, b int) error {
	if len(r.in.Published) == 0 || best.len() == 0 {
		return nil
	}
	type held struct {
		vb int
		fp uint64
	}
	set := map[held]struct{}{}
	read := intermediate.NewReader(intermediate.CodecNone)
	for _, p := range r.in.Published {
		data, err := read.Load(r.ctx, r.published, intermediate.SpanOf(p.Key, p.Index, a, b), r.idsBuf)
		if err != nil {
			return err
		}
		r.idsBuf = data
		fps, err := intermediate.Fingerprints(data)
		if err != nil {
			return fmt.Errorf("read %s: %w", p.Key, err)
		}
		for v := a; v < b; v++ {
			n := p.Index.Rows[v+1] - p.Index.Rows[v]
			if n > int64(len(fps)) {
				return fmt.Errorf("read %s: %w", p.Key, intermediate.ErrCorrupt)
			}
			for _, fp := range fps[:n] {
				set[held{r.in.Lo + v, fp}] = struct{}{}
			}
			fps = fps[n:]
		}
	}
	if len(set) == 0 {
		return nil
	}
	for fp, i := range best.byFP {
		if _, ok := set[held{int(best.rows[i].vb), fp}]; ok {
			delete(best.byFP, fp)
		}
	}
	for key, i := range best.byKey {
		if _, ok := set[held{int(best.rows[i].vb), best.rows[i].fp}]; ok {
			delete(best.byKey, key)
		}
	}
	return nil
}
