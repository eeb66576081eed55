package intermediate

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"github.com/zeebo/xxh3"

	"sluice/pipeline/storage"
)

// A keys file holds the dedupe keys of one published output file, as
// 8-byte fingerprints (KeyFingerprint, little endian) grouped by virtual
// bucket in ascending order, then the file's Index over all VBuckets as
// JSON, then the JSON's length (uint32, little endian) and "SKEY". The job
// keeps one beside every file it publishes, so that a rebuild of a
// neighbouring date can tell which of its keys a partition it does not
// rebuild already holds.
//
// Fingerprints are only ever compared within one virtual bucket, whose
// keys already share 10 bits of another hash: at 160 million rows a day
// rebuilt against twice as many published, the chance that any genuine
// row is mistaken for a published one is about 3 in a million per run.
// Full keys would take four to five times the space (a tenth of the
// Parquet, not a fiftieth).
const keysMagic = "SKEY"

// KeyFingerprint is the fingerprint of a dedupe key in keys files:
// XXH3-64, independent of the xxhash64 that places keys in virtual
// buckets.
func KeyFingerprint(key []byte) uint64 { return xxh3.Hash(key) }

// KeysWriter writes a keys file. Keys must come in ascending virtual
// bucket order.
type KeysWriter struct {
	w   *bufio.Writer
	n   int64
	ix  Index
	vb  int // the bucket being written
	rec []byte
	err error
}

// NewKeysWriter writes a keys file to w.
func NewKeysWriter(w io.Writer) *KeysWriter {
	k := &KeysWriter{w: bufio.NewWriterSize(w, 64<<10), ix: Index{
		Offset: make([]int64, VBuckets+1), Raw: make([]int64, VBuckets+1), Rows: make([]int64, VBuckets+1),
	}}
	return k
}

// Add appends key, whose virtual bucket is vb.
func (k *KeysWriter) Add(vb int, key []byte) error {
	return k.AddFingerprint(vb, KeyFingerprint(key))
}

// AddFingerprint appends the key whose fingerprint (KeyFingerprint) is fp
// and whose virtual bucket is vb.
func (k *KeysWriter) AddFingerprint(vb int, fp uint64) error {
	if k.err != nil {
		return k.err
	}
	if vb < k.vb || vb >= VBuckets {
		return fmt.Errorf("keys file: bucket %d after %d", vb, k.vb)
	}
	k.advance(vb)
	k.rec = binary.LittleEndian.AppendUint64(k.rec[:0], fp)
	if _, err := k.w.Write(k.rec); err != nil {
		k.err = err
		return err
	}
	k.n += int64(len(k.rec))
	k.ix.Rows[vb+1]++
	k.ix.Offset[vb+1], k.ix.Raw[vb+1] = k.n, k.n
	return nil
}

// advance closes the buckets before vb: they end where the file is now.
func (k *KeysWriter) advance(vb int) {
	for ; k.vb < vb; k.vb++ {
		k.ix.Offset[k.vb+2], k.ix.Raw[k.vb+2], k.ix.Rows[k.vb+2] = k.ix.Offset[k.vb+1], k.ix.Raw[k.vb+1], k.ix.Rows[k.vb+1]
	}
}

// Close writes the index and the footer.
func (k *KeysWriter) Close() error {
	if k.err != nil {
		return k.err
	}
	k.advance(VBuckets - 1)
	tail, err := k.tail()
	if err != nil {
		return err
	}
	if _, err := k.w.Write(tail); err != nil {
		return err
	}
	return k.w.Flush()
}

// tail is what follows the fingerprints: the index, its length, the magic.
func (k *KeysWriter) tail() ([]byte, error) {
	ix, err := json.Marshal(k.ix)
	if err != nil {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	ix = binary.LittleEndian.AppendUint32(ix, uint32(len(ix)))
	return append(ix, keysMagic...), nil
}

// ReadKeysIndex reads the index of the keys file at key (size bytes).
func ReadKeysIndex(ctx context.Context, r storage.Reader, key string, size int64) (Index, error) {
	var ix Index
	if size < 8 {
		return ix, fmt.Errorf("keys file %s: %d bytes: %w", key, size, ErrCorrupt)
	}
	ra := storage.NewReaderAt(ctx, r, key)
	foot := make([]byte, 8)
	if _, err := ra.ReadAt(foot, size-8); err != nil {
		return ix, fmt.Errorf("keys file %s: %w", key, err)
	}
	n := int64(binary.LittleEndian.Uint32(foot))
	if string(foot[4:]) != keysMagic || n > size-8 {
		return ix, fmt.Errorf("keys file %s: no footer: %w", key, ErrCorrupt)
	}
	js := make([]byte, n)
	if _, err := ra.ReadAt(js, size-8-n); err != nil {
		return ix, fmt.Errorf("keys file %s: %w", key, err)
	}
	if err := json.Unmarshal(js, &ix); err != nil || ix.Buckets() != VBuckets {
		return ix, fmt.Errorf("keys file %s: index: %v: %w", key, err, ErrCorrupt)
	}
	return ix, nil
}

// Fingerprints decodes the records of a loaded keys span.
func Fingerprints(data []byte) ([]uint64, error) {
	if len(data)%8 != 0 {
		return nil, ErrCorrupt
	}
	out := make([]uint64, len(data)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(data[8*i:])
	}
	return out, nil
}

// Index is the index of the keys written so far (complete after Close).
func (k *KeysWriter) Index() Index { return k.ix }
