package catalog_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"sluice/internal/testenv"
	"sluice/pipeline/catalog"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/s3store"
)

const writers, updates = 4, 10

// addColumns adds updates columns named w<writer>_<i> to raw.shared, one
// UpdateTable each.
func addColumns(ctx context.Context, s *catalog.Store, writer int) error {
	for i := range updates {
		_, _, err := s.UpdateTable(ctx, "raw", "shared", func(t *catalog.Table) error {
			t.Format = "json"
			t.Columns = append(t.Columns, catalog.Column{Name: fmt.Sprintf("w%d_%d", writer, i), Type: catalog.Prim(catalog.KindString)})
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkNoLostUpdate: every writer's every column is there, and every
// update made exactly one version with its history document.
func checkNoLostUpdate(t *testing.T, b storage.Bucket) {
	t.Helper()
	s := catalog.New(b)
	tb, err := s.GetTable(t.Context(), "raw", "shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Columns) != writers*updates || tb.Version != writers*updates {
		t.Errorf("%d columns, version %d; want %d and %d: updates were lost", len(tb.Columns), tb.Version, writers*updates, writers*updates)
	}
	hist, err := s.History(t.Context(), "raw", "shared")
	if err != nil || len(hist) != writers*updates {
		t.Errorf("history: %d versions, %v", len(hist), err)
	}
	for i, h := range hist {
		if h.Version != i+1 || len(h.Columns) != i+1 {
			t.Errorf("history[%d]: version %d with %d columns", i, h.Version, len(h.Columns))
		}
	}
}

// separateStores runs the writers concurrently, each with its own Store
// over its own bucket handle, so nothing but the storage's conditional put
// keeps them apart.
func separateStores(t *testing.T, open func() storage.Bucket) {
	var wg sync.WaitGroup
	for w := range writers {
		s := catalog.New(open())
		wg.Go(func() {
			if err := addColumns(t.Context(), s, w); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	checkNoLostUpdate(t, open())
}

func TestConcurrentStoresFilestore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	separateStores(t, func() storage.Bucket {
		b, err := filestore.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestIntegrationConcurrentStoresS3(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	bucket := srv.NewBucket(t)
	separateStores(t, func() storage.Bucket {
		b, err := s3store.New(t.Context(), bucket, "catalog", s3store.Options{
			Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestConcurrentProcessesFilestore runs the writers as separate processes
// (this test binary re-executed), the way two workers share a catalog.
func TestConcurrentProcessesFilestore(t *testing.T) {
	t.Parallel()
	if dir := os.Getenv("SLUICE_CATALOG_WRITER_DIR"); dir != "" {
		w, _ := strconv.Atoi(os.Getenv("SLUICE_CATALOG_WRITER"))
		b, err := filestore.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := addColumns(t.Context(), catalog.New(b), w); err != nil {
			t.Fatal(err)
		}
		return
	}
	dir := t.TempDir()
	var cmds []*exec.Cmd
	for w := range writers {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentProcessesFilestore$")
		cmd.Env = append(os.Environ(), "SLUICE_CATALOG_WRITER_DIR="+dir, "SLUICE_CATALOG_WRITER="+strconv.Itoa(w))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer process: %v", err)
		}
	}
	b, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkNoLostUpdate(t, b)
}
