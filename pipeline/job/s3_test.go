package job_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"

	"sluice/internal/testenv"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/storage/s3store"
)

// failingComposes is an S3 bucket whose first n Composes fail after doing
// part of their work, as a worker killed in the middle of assembling a
// file would leave it.
type failingComposes struct {
	*s3store.Bucket
	mu sync.Mutex
	n  int
}

func (f *failingComposes) Compose(ctx context.Context, key string, sections []storage.Section) error {
	f.mu.Lock()
	fail := f.n > 0
	f.n--
	f.mu.Unlock()
	if fail {
		// Half the sections: what a multipart upload cut short would have
		// copied, never completed.
		_ = f.Bucket.Compose(ctx, "_staging/abandoned/"+key, sections[:len(sections)/2])
		return errInjected
	}
	return f.Bucket.Compose(ctx, key, sections)
}

// On S3 (versitygw, which enforces the 5 MiB part minimum), a date whose
// files are assembled from fragments far below 5 MiB, with the first
// assemblies failing and retried, gives the files a run on memory
// buckets gives, byte for byte.
func TestIntegrationAssembleOnS3(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	ctx := t.Context()
	in := memstore.New()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay, cfg.Days = 3000, 2
	if _, err := segmentgen.Generate(ctx, in, cfg); err != nil {
		t.Fatal(err)
	}
	w := genWindow(cfg)
	spec := testSpec()
	spec.TargetFileBytes = 256 << 10 // a few files a date, several fragments each
	want := memstore.New()
	s := newStep(in, memstore.New(), want, spec, w)
	s.ReduceOptions.RowGroupBytes = 64 << 10
	runJob(t, s)

	opts := s3store.Options{Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	bucket := srv.NewBucket(t)
	outS3, err := s3store.New(ctx, bucket, "out", opts)
	if err != nil {
		t.Fatal(err)
	}
	scratch, err := s3store.New(ctx, bucket, "scratch", opts)
	if err != nil {
		t.Fatal(err)
	}
	out := &failingComposes{Bucket: outS3, n: 2}
	s = newStep(in, scratch, out, spec, w)
	s.ReduceOptions.RowGroupBytes = 64 << 10
	dates, total := untilCommit(t, s)
	committed := 0
	for _, d := range dates {
		// The first attempt of a date can fail mid-assembly; its retry
		// repairs it.
		for attempt := 0; ; attempt++ {
			_, err := s.Commit(ctx, d, total)
			if err == nil {
				committed++
				break
			}
			if !errors.Is(err, errInjected) || attempt > 2 {
				t.Fatalf("commit %s: %v", d, err)
			}
		}
	}
	if committed != len(w.Dates()) || out.n > 0 {
		t.Fatalf("%d dates committed, %d failures left to inject", committed, out.n)
	}
	got := map[string][]byte{}
	err = out.List(ctx, "year=", func(oi storage.ObjectInfo) error {
		rc, err := out.Get(ctx, oi.Key)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		got[oi.Key] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := map[string][]byte{}
	for k, v := range want.Objects() {
		if len(k) > 5 && k[:5] == "year=" {
			wantFiles[k] = v
		}
	}
	if len(wantFiles) < 2*len(w.Dates()) {
		t.Fatalf("the memory build made %d files, want several a date", len(wantFiles))
	}
	a, b := byFile(wantFiles), byFile(got)
	if !slices.Equal(slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b))) {
		t.Fatalf("files %v on S3, %v in memory", slices.Sorted(maps.Keys(b)), slices.Sorted(maps.Keys(a)))
	}
	for k := range a {
		if string(a[k]) != string(b[k]) {
			t.Errorf("%s: %d bytes on S3 differ from the %d in memory", k, len(b[k]), len(a[k]))
		}
	}
	// Nothing staged is left behind but what the failed attempts
	// abandoned on purpose.
	staged, _ := storage.ListKeys(ctx, outS3, "_staging/", func(oi storage.ObjectInfo) bool { return len(oi.Key) < 19 || oi.Key[:19] != "_staging/abandoned/" })
	if len(staged) != 0 {
		t.Errorf("staged objects left: %v", staged)
	}
}
