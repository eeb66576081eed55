package filestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/storagetest"
)

func TestAcceptance(t *testing.T) {
	t.Parallel()
	b, err := filestore.New(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	storagetest.AcceptanceTest(t, b)
}

func TestTempFilesHidden(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A file left by a crashed Put must not show up as an object.
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", ".sluice-tmp-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "a/real", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.List(t.Context(), "", func(oi storage.ObjectInfo) error { keys = append(keys, oi.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "a/real" {
		t.Errorf("List = %q, want just a/real", keys)
	}
	if err := b.Put(t.Context(), "a/.sluice-tmp-x", strings.NewReader("x")); err == nil {
		t.Error("Put to a temporary-file name succeeded")
	}
}

func TestInvalidKeys(t *testing.T) {
	t.Parallel()
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "/abs", "../escape", "a/../../b", "a//b", "a/", "."} {
		if err := b.Put(t.Context(), key, strings.NewReader("x")); err == nil {
			t.Errorf("Put(%q) succeeded", key)
		}
	}
	if dirs, err := b.ListDirs(t.Context(), "../"); err != nil || len(dirs) != 0 {
		t.Errorf("ListDirs(../) = %q, %v; want nothing", dirs, err)
	}
}

func TestLocation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Location(), "file://"+filepath.ToSlash(dir); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
}

// Puts and Deletes in sibling folders race on their shared parents: a Delete
// removes a parent it emptied while a Put is creating a folder below it.
func TestPutSurvivesConcurrentDeletesOfSharedParents(t *testing.T) {
	t.Parallel()
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				key := fmt.Sprintf("_staging/year=2024/month=3/date=2024-03-%02d/part-%d", w, i)
				if err := b.Put(ctx, key, strings.NewReader("x")); err != nil {
					errs <- err
					return
				}
				if err := b.Delete(ctx, key); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A retried publish copies a staged file over a published name that is
// already a link to the same file. rename(2) between two links of one
// inode succeeds without removing the source name, which used to leave a
// hidden full-size .sluice-tmp-* copy in the published folder.
func TestCopyOverSameFileLeavesNoTemp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := b.Put(ctx, "staging/part-0.parquet", strings.NewReader("rows")); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first publish and its retry
		if err := b.Copy(ctx, "staging/part-0.parquet", "table/date=2024-01-01/part-0.parquet"); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "table", "date=2024-01-01"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "part-0.parquet" {
		t.Errorf("published folder holds %q, want just part-0.parquet", names)
	}
}

// The temporary files of interrupted writes are invisible to List and
// Delete; RemoveLeftovers removes those older than its cut-off, and only
// those, leaving objects and the lock file of conditional puts.
func TestRemoveLeftovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := b.Put(ctx, "table/date=2024-01-01/part-0.parquet", strings.NewReader("rows")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIfMatch(ctx, "_catalog/t.json", strings.NewReader("{}"), ""); err != nil {
		t.Fatal(err)
	}
	// What a worker killed inside Put leaves, here and in a folder that
	// holds nothing else.
	for _, p := range []string{"table/date=2024-01-01/.sluice-tmp-1", "table/date=2024-01-02/.sluice-tmp-2", "other/.sluice-tmp-3"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A cut-off before the files were written removes nothing.
	if n, _, err := b.RemoveLeftovers(ctx, "", time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("RemoveLeftovers of recent files = %d, %v; want 0", n, err)
	}
	n, size, err := b.RemoveLeftovers(ctx, "table/", time.Now().Add(time.Hour))
	if err != nil || n != 2 || size != 2*int64(len("partial")) {
		t.Fatalf("RemoveLeftovers(table/) = %d, %d, %v; want 2, 14", n, size, err)
	}
	var left []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error { // its func never fails
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			left = append(left, filepath.ToSlash(rel))
		}
		return err
	})
	want := []string{".sluice-tmp-lock", "_catalog", "_catalog/t.json", "other", "other/.sluice-tmp-3", "table", "table/date=2024-01-01", "table/date=2024-01-01/part-0.parquet"}
	if fmt.Sprint(left) != fmt.Sprint(want) {
		t.Errorf("left %q, want %q", left, want)
	}
}
