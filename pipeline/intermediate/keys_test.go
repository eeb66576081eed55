package intermediate_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"

	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage/memstore"
)

// A keys file written bucket by bucket reads back by bucket range.
func TestKeysFileRoundTrip(t *testing.T) {
	t.Parallel()
	type vk struct {
		vb  int
		key []byte
	}
	var keys []vk
	for i := range 5000 {
		k := []byte(fmt.Sprintf("msg-%05d", i))
		keys = append(keys, vk{intermediate.VBucket(k), k})
	}
	slices.SortFunc(keys, func(a, b vk) int { return cmp.Compare(a.vb, b.vb) })
	var buf bytes.Buffer
	w := intermediate.NewKeysWriter(&buf)
	for _, k := range keys {
		if err := w.Add(k.vb, k.key); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(0, []byte("late")); err == nil {
		t.Error("a key before the last bucket was accepted")
	}
	ctx := context.Background()
	b := memstore.New()
	if err := b.Put(ctx, "k.keys", bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	ix, err := intermediate.ReadKeysIndex(ctx, b, "k.keys", int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := 100, 300
	data, err := intermediate.NewReader(intermediate.CodecNone).Load(ctx, b, intermediate.SpanOf("k.keys", ix, lo, hi), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := intermediate.Fingerprints(data)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for _, k := range keys {
		if k.vb >= lo && k.vb < hi {
			want = append(want, intermediate.KeyFingerprint(k.key))
		}
	}
	if !slices.Equal(got, want) || len(want) == 0 {
		t.Errorf("buckets [%d, %d): %d fingerprints, want %d", lo, hi, len(got), len(want))
	}
	if _, err := intermediate.ReadKeysIndex(ctx, b, "k.keys", int64(buf.Len()-1)); err == nil {
		t.Error("a truncated keys file was read")
	}
}
