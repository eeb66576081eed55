package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sluice/pipeline/storage"
)

// LargeSize is the size of the object the acceptance test streams through
// Put and Get.
const LargeSize = 20 << 20

// AcceptanceTest checks that b behaves as the storage.Bucket contract says.
// b must be empty; the test removes what it wrote.
func AcceptanceTest(t *testing.T, b storage.Bucket) {
	t.Helper()
	ctx := t.Context()
	if keys := listKeys(t, b, ""); len(keys) > 0 {
		t.Fatalf("acceptance test needs an empty bucket; %s holds %q", b.Location(), keys)
	}

	t.Run("Missing", func(t *testing.T) { testMissing(t, b) })
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, b) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, b) })
	t.Run("OddKeys", func(t *testing.T) { testOddKeys(t, b) })
	t.Run("ListOrder", func(t *testing.T) { testListOrder(t, b) })
	t.Run("ListStops", func(t *testing.T) { testListStops(t, b) })
	t.Run("ListDirs", func(t *testing.T) { testListDirs(t, b) })
	t.Run("Large", func(t *testing.T) { testLarge(t, b) })
	t.Run("NoPartialReads", func(t *testing.T) { testNoPartialReads(t, b) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, b) })
	t.Run("Canceled", func(t *testing.T) { testCanceled(t, b) })
	t.Run("Range", func(t *testing.T) { testRange(t, b) })
	t.Run("Copy", func(t *testing.T) { testCopy(t, b) })
	t.Run("Compose", func(t *testing.T) { testCompose(t, b) })
	t.Run("PutFile", func(t *testing.T) { testPutFile(t, b) })
	t.Run("DeleteKeys", func(t *testing.T) { testDeleteKeys(t, b) })
	if cp, ok := b.(storage.ConditionalPutter); ok {
		t.Run("Conditional", func(t *testing.T) { ConditionalTest(t, b, cp) })
	}

	t.Run("Cleanup", func(t *testing.T) {
		for _, k := range listKeys(t, b, "") {
			if err := b.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if keys := listKeys(t, b, ""); len(keys) > 0 {
			t.Errorf("after deleting everything, List gives %q", keys)
		}
		if dirs := listDirs(t, b, ""); len(dirs) > 0 {
			t.Errorf("after deleting everything, ListDirs gives %q", dirs)
		}
	})
}

func testMissing(t *testing.T, b storage.Bucket) {
	ctx := t.Context()
	for _, key := range []string{"missing", "missing/deeper/key.txt"} {
		if _, err := b.Get(ctx, key); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Get(%q) = %v, want ErrNotExist", key, err)
		}
		if _, err := b.Stat(ctx, key); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want ErrNotExist", key, err)
		}
		if err := b.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) of a missing key = %v, want nil", key, err)
		}
	}
	// A "folder" is not an object, and a path through an object is missing.
	put(t, b, "missing-dir/file", "x")
	for _, key := range []string{"missing-dir", "missing-dir/file/below"} {
		if _, err := b.Get(ctx, key); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Get(%q) = %v, want ErrNotExist", key, err)
		}
		if _, err := b.Stat(ctx, key); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want ErrNotExist", key, err)
		}
	}
}

func testPutGet(t *testing.T, b storage.Bucket) {
	before := time.Now().Add(-time.Hour) // servers' clocks may differ a little
	put(t, b, "putget/hello.txt", "hello, world")
	if got := get(t, b, "putget/hello.txt"); got != "hello, world" {
		t.Errorf("Get = %q, want %q", got, "hello, world")
	}
	info := stat(t, b, "putget/hello.txt")
	if info.Key != "putget/hello.txt" || info.Size != 12 || info.ETag == "" {
		t.Errorf("Stat = %+v, want key putget/hello.txt, size 12, an ETag", info)
	}
	if info.ModTime.Before(before) || info.ModTime.After(time.Now().Add(time.Hour)) {
		t.Errorf("Stat ModTime = %v, want about now", info.ModTime)
	}

	put(t, b, "putget/empty", "")
	if got := get(t, b, "putget/empty"); got != "" {
		t.Errorf("Get(empty) = %q", got)
	}
	if info := stat(t, b, "putget/empty"); info.Size != 0 {
		t.Errorf("Stat(empty).Size = %d", info.Size)
	}

	listed := listInfos(t, b, "putget/")
	if len(listed) != 2 || listed[1].Key != "putget/hello.txt" || listed[1].Size != 12 || listed[1].ETag != info.ETag {
		t.Errorf("List = %+v, want putget/empty and putget/hello.txt (size 12, ETag %q)", listed, info.ETag)
	}
}

func testOverwrite(t *testing.T, b storage.Bucket) {
	put(t, b, "overwrite/k", "first")
	first := stat(t, b, "overwrite/k")
	// Same size: the ETag must still change.
	put(t, b, "overwrite/k", "again")
	second := stat(t, b, "overwrite/k")
	if got := get(t, b, "overwrite/k"); got != "again" {
		t.Errorf("Get after overwrite = %q", got)
	}
	if second.ETag == first.ETag {
		t.Errorf("ETag %q unchanged after same-size overwrite", second.ETag)
	}
	put(t, b, "overwrite/k", "a longer body")
	if got := get(t, b, "overwrite/k"); got != "a longer body" {
		t.Errorf("Get after overwrite = %q", got)
	}
	if info := stat(t, b, "overwrite/k"); info.Size != 13 || info.ETag == second.ETag {
		t.Errorf("Stat after overwrite = %+v", info)
	}
	if keys := listKeys(t, b, "overwrite/"); !slices.Equal(keys, []string{"overwrite/k"}) {
		t.Errorf("List = %q, want one key", keys)
	}
	if err := b.Delete(t.Context(), "overwrite/k"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(t.Context(), "overwrite/k"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat after Delete = %v, want ErrNotExist", err)
	}
}

// testOddKeys checks that keys needing URL escaping survive unchanged.
func testOddKeys(t *testing.T, b storage.Bucket) {
	keys := []string{"odd/with space.txt", "odd/plus+and%percent", "odd/ünïcödé/日本.gz", "odd/eq=1&x=2"}
	for _, k := range keys {
		put(t, b, k, k)
	}
	for _, k := range keys {
		if got := get(t, b, k); got != k {
			t.Errorf("Get(%q) = %q", k, got)
		}
	}
	want := slices.Sorted(slices.Values(keys))
	if got := listKeys(t, b, "odd/"); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
}

func testListOrder(t *testing.T, b storage.Bucket) {
	// "-" sorts before "/" and "0" after it, so a walk that visits folder
	// "a" as a whole before or after its siblings gets these wrong.
	// No key is also a "folder" of another key: S3 allows that, a
	// filesystem cannot.
	keys := []string{
		"order/A", "order/a-c", "order/a.b", "order/a/b", "order/a/c/d",
		"order/a0", "order/ab", "order/b/c/d", "order/b0", "order/z",
	}
	shuffled := slices.Clone(keys)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		put(t, b, k, "x")
	}
	want := func(prefix string) []string {
		var out []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				out = append(out, k)
			}
		}
		return out
	}
	for _, prefix := range []string{"order/", "order/a", "order/a/", "order/b", "order/b/c/", "order/a-", "order/zz", "orde"} {
		if got := listKeys(t, b, prefix); !slices.Equal(got, want(prefix)) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want(prefix))
		}
	}
}

func testListStops(t *testing.T, b storage.Bucket) {
	for i := range 3 {
		put(t, b, fmt.Sprintf("stops/%d", i), "x")
	}
	stop := errors.New("stop here")
	calls := 0
	err := b.List(t.Context(), "stops/", func(storage.ObjectInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with failing callback = %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func testListDirs(t *testing.T, b storage.Bucket) {
	for _, k := range []string{"dirs/x/1", "dirs/x/2", "dirs/y/z/3", "dirs/file", "dirs/x-y/4", "dirs/y0/5"} {
		put(t, b, k, "x")
	}
	cases := map[string][]string{
		"dirs/":      {"dirs/x-y/", "dirs/x/", "dirs/y/", "dirs/y0/"},
		"dirs/y/":    {"dirs/y/z/"},
		"dirs/y":     {"dirs/y/", "dirs/y0/"},
		"dirs/y/z/":  nil,
		"dirs/none/": nil,
	}
	for prefix, want := range cases {
		if got := listDirs(t, b, prefix); !slices.Equal(got, want) {
			t.Errorf("ListDirs(%q) = %q, want %q", prefix, got, want)
		}
	}
	if got := listDirs(t, b, ""); !slices.Contains(got, "dirs/") || slices.Contains(got, "dirs/x/") {
		t.Errorf("ListDirs(\"\") = %q, want it to hold dirs/ and nothing deeper", got)
	}
	// A folder lasts only while an object is below it, as on S3.
	for _, k := range []string{"dirs/x/1", "dirs/x/2"} {
		if err := b.Delete(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := listDirs(t, b, "dirs/"), []string{"dirs/x-y/", "dirs/y/", "dirs/y0/"}; !slices.Equal(got, want) {
		t.Errorf("after emptying dirs/x/, ListDirs = %q, want %q", got, want)
	}
}

func testLarge(t *testing.T, b storage.Bucket) {
	ctx := t.Context()
	// A generated stream, not a buffer: the backend cannot know the size
	// up front or seek in it.
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(newRandReader(1), LargeSize), h)
	if err := b.Put(ctx, "large/blob", struct{ io.Reader }{src}); err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	if info := stat(t, b, "large/blob"); info.Size != LargeSize {
		t.Errorf("Stat size = %d, want %d", info.Size, LargeSize)
	}
	rc, err := b.Get(ctx, "large/blob")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h.Reset()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatal(err)
	}
	if n != LargeSize || !bytes.Equal(h.Sum(nil), want) {
		t.Errorf("read back %d bytes with a different hash, want %d identical bytes", n, LargeSize)
	}
	if err := b.Delete(ctx, "large/blob"); err != nil {
		t.Fatal(err)
	}
}

// testNoPartialReads holds a Put open halfway and checks readers still see
// the old object, and listings show nothing else.
func testNoPartialReads(t *testing.T, b storage.Bucket) {
	ctx := t.Context()
	put(t, b, "atomic/k", "old")
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- b.Put(ctx, "atomic/k", pr) }()
	if _, err := pw.Write([]byte("new, first half;")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, b, "atomic/k"); got != "old" {
		t.Errorf("Get during Put = %q, want the old object", got)
	}
	if keys := listKeys(t, b, "atomic/"); !slices.Equal(keys, []string{"atomic/k"}) {
		t.Errorf("List during Put = %q, want just atomic/k", keys)
	}
	if _, err := pw.Write([]byte(" second half")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := get(t, b, "atomic/k"); got != "new, first half; second half" {
		t.Errorf("Get after Put = %q", got)
	}
}

func testConcurrent(t *testing.T, b storage.Bucket) {
	const n = 16
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = strings.Repeat(fmt.Sprintf("writer %02d;", i), 1000)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := b.Put(t.Context(), fmt.Sprintf("concurrent/own/%02d", i), strings.NewReader(bodies[i])); err != nil {
				t.Error(err)
			}
			if err := b.Put(t.Context(), "concurrent/shared", strings.NewReader(bodies[i])); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := listKeys(t, b, "concurrent/own/"); len(got) != n {
		t.Errorf("List after %d concurrent puts = %d keys", n, len(got))
	}
	for i := range n {
		if got := get(t, b, fmt.Sprintf("concurrent/own/%02d", i)); got != bodies[i] {
			t.Errorf("concurrent/own/%02d holds another body", i)
		}
	}
	// The shared key holds one writer's body whole, never a mix.
	if got := get(t, b, "concurrent/shared"); !slices.Contains(bodies, got) {
		t.Errorf("concurrent/shared holds a mix of bodies (%d bytes)", len(got))
	}
}

func testCanceled(t *testing.T, b storage.Bucket) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Put(ctx, "canceled/k", strings.NewReader("x")); err == nil {
		t.Error("Put with a canceled context succeeded")
	}
	if _, err := b.Stat(t.Context(), "canceled/k"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat after canceled Put = %v, want ErrNotExist", err)
	}
	if _, err := b.Get(ctx, "anything"); err == nil {
		t.Error("Get with a canceled context succeeded")
	}
}

func testRange(t *testing.T, b storage.Bucket) {
	ctx := t.Context()
	put(t, b, "range/k", "0123456789")
	for _, c := range []struct {
		off, n int64
		want   string
	}{{0, 10, "0123456789"}, {2, 3, "234"}, {7, -1, "789"}, {0, -1, "0123456789"}, {8, 10, "89"}, {10, 5, ""}, {4, 0, ""}} {
		rc, err := b.GetRange(ctx, "range/k", c.off, c.n)
		if err != nil {
			t.Errorf("GetRange(%d, %d): %v", c.off, c.n, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != c.want {
			t.Errorf("GetRange(%d, %d) = %q, %v; want %q", c.off, c.n, got, err, c.want)
		}
	}
	if _, err := b.GetRange(ctx, "range/missing", 0, 1); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("GetRange of a missing key = %v, want ErrNotExist", err)
	}
}

func testCopy(t *testing.T, b storage.Bucket) {
	ctx := t.Context()
	put(t, b, "copy/src", "copied bytes")
	if err := storage.Copy(ctx, b, "copy/src", "copy/deeper/dst=1"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, b, "copy/deeper/dst=1"); got != "copied bytes" {
		t.Errorf("copy holds %q", got)
	}
	if got := get(t, b, "copy/src"); got != "copied bytes" {
		t.Errorf("source holds %q after the copy", got)
	}
	if err := storage.Copy(ctx, b, "copy/missing", "copy/dst2"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Copy of a missing key = %v, want ErrNotExist", err)
	}
}

func testDeleteKeys(t *testing.T, b storage.Bucket) {
	ctx := t.Context()
	var keys []string
	for i := range 25 {
		k := fmt.Sprintf("deletekeys/%02d/obj", i)
		put(t, b, k, "x")
		keys = append(keys, k)
	}
	put(t, b, "deletekeys/keep", "x")
	if err := storage.DeleteKeys(ctx, b, append(keys, "deletekeys/never-there")); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, b, "deletekeys/"); len(got) != 1 || got[0] != "deletekeys/keep" {
		t.Errorf("after DeleteKeys: %q, want only deletekeys/keep", got)
	}
	removed, err := storage.DeleteStale(ctx, b, "deletekeys/", func(k string) bool { return false })
	if err != nil || len(removed) != 1 {
		t.Errorf("DeleteStale = %q, %v", removed, err)
	}
	if got := listKeys(t, b, "deletekeys/"); len(got) != 0 {
		t.Errorf("after DeleteStale: %q", got)
	}
}

func put(t *testing.T, b storage.Bucket, key, body string) {
	t.Helper()
	if err := b.Put(t.Context(), key, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, b storage.Bucket, key string) string {
	t.Helper()
	rc, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(body)
}

func stat(t *testing.T, b storage.Bucket, key string) storage.ObjectInfo {
	t.Helper()
	info, err := b.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func listInfos(t *testing.T, b storage.Bucket, prefix string) []storage.ObjectInfo {
	t.Helper()
	var infos []storage.ObjectInfo
	if err := b.List(t.Context(), prefix, func(oi storage.ObjectInfo) error {
		infos = append(infos, oi)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return infos
}

func listKeys(t *testing.T, b storage.Bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for _, oi := range listInfos(t, b, prefix) {
		keys = append(keys, oi.Key)
	}
	return keys
}

func listDirs(t *testing.T, b storage.Bucket, prefix string) []string {
	t.Helper()
	dirs, err := b.ListDirs(t.Context(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// randReader yields a deterministic pseudo-random stream.
type randReader struct{ r *rand.ChaCha8 }

func newRandReader(seed byte) randReader {
	var s [32]byte
	s[0] = seed
	return randReader{rand.NewChaCha8(s)}
}

func (r randReader) Read(p []byte) (int, error) { return r.r.Read(p) }
