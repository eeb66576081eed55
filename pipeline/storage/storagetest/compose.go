package storagetest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"sluice/pipeline/storage"
)

// testCompose builds objects from sections the way the job assembles an
// output file from its fragments: literal bytes, small ranges and large
// ones mixed, so that on S3 some parts are server-side copies and others
// are small pieces gathered to the 5 MiB a part needs (a server that
// enforces the minimum refuses a wrong plan).
func testCompose(t *testing.T, b storage.Bucket) {
	ctx := t.Context()
	const mib = 1 << 20
	srcs := map[string][]byte{}
	for i, size := range map[string]int{"compose/src/a": 7 * mib, "compose/src/b": mib, "compose/src/c": 12 * mib, "compose/src/d": 100} {
		data := make([]byte, size)
		if _, err := io.ReadFull(newRandReader(byte(len(i)+size%251)), data); err != nil {
			t.Fatal(err)
		}
		if err := b.Put(ctx, i, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		srcs[i] = data
	}
	section := func(key string, off, n int64) storage.Section {
		return storage.Section{Key: key, Offset: off, Length: n}
	}
	want := func(sections []storage.Section) []byte {
		var out []byte
		for _, s := range sections {
			if s.Key == "" {
				out = append(out, s.Data...)
			} else {
				out = append(out, srcs[s.Key][s.Offset:s.Offset+s.Length]...)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		sections []storage.Section
	}{
		{"small", []storage.Section{
			{Data: []byte("PAR1")}, section("compose/src/d", 10, 50), section("compose/src/b", 0, 1000), {Data: []byte("footer")},
		}},
		{"mixed", []storage.Section{
			{Data: []byte("PAR1")},
			section("compose/src/a", 0, 7*mib),
			section("compose/src/b", 100, mib-100),
			section("compose/src/d", 0, 100),
			section("compose/src/c", mib, 10*mib),
			{Data: []byte("footer")},
		}},
		{"large-first", []storage.Section{
			section("compose/src/c", 0, 12*mib), section("compose/src/a", 3*mib, 4*mib), section("compose/src/b", 0, mib),
		}},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "compose/out/" + tc.name + "=1.parquet"
			put(t, b, key, "old")
			if err := storage.Compose(ctx, b, key, tc.sections); err != nil {
				t.Fatal(err)
			}
			if got := []byte(get(t, b, key)); !bytes.Equal(got, want(tc.sections)) {
				t.Errorf("composed %d bytes, want %d (same length: %v)", len(got), len(want(tc.sections)), len(got) == len(want(tc.sections)))
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		put(t, b, "compose/out/kept", "old")
		err := storage.Compose(ctx, b, "compose/out/kept", []storage.Section{
			section("compose/src/a", 0, 7*mib), section("compose/src/missing", 0, 6*mib),
		})
		if !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Compose from a missing source = %v, want ErrNotExist", err)
		}
		if got := get(t, b, "compose/out/kept"); got != "old" {
			t.Errorf("a failed Compose left %d bytes, want the old object", len(got))
		}
	})
	t.Run("short", func(t *testing.T) {
		err := storage.Compose(ctx, b, "compose/out/short", []storage.Section{section("compose/src/d", 50, 100)})
		if err == nil {
			t.Error("Compose of a range past the end of its source succeeded")
		}
	})
	if err := storage.DeletePrefix(ctx, b, "compose/"); err != nil {
		t.Fatal(err)
	}
}

// testPutFile stores a local file as an object: the object holds its
// bytes, and the local file is gone.
func testPutFile(t *testing.T, b storage.Bucket) {
	f, err := os.CreateTemp(t.TempDir(), "putfile-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("spooled bytes"); err != nil {
		t.Fatal(err)
	}
	if err := storage.PutFile(t.Context(), b, "putfile/deep/obj", f); err != nil {
		t.Fatal(err)
	}
	if got := get(t, b, "putfile/deep/obj"); got != "spooled bytes" {
		t.Errorf("object holds %q", got)
	}
	if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the local file is still there: %v", err)
	}
	if err := storage.DeletePrefix(t.Context(), b, "putfile/"); err != nil {
		t.Fatal(err)
	}
}
