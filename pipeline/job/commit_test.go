package job_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
)

var errInjected = errors.New("injected storage failure")

// faultyBucket fails the failAt-th change (Put, Copy or Delete) made
// while it is armed, as a crash or a lost connection at that point would.
type faultyBucket struct {
	*memstore.Bucket
	mu     sync.Mutex
	armed  bool
	ops    int
	failAt int // 0: never
}

func (f *faultyBucket) change() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		return nil
	}
	f.ops++
	if f.ops == f.failAt {
		return errInjected
	}
	return nil
}

func (f *faultyBucket) Put(ctx context.Context, key string, body io.Reader) error {
	if err := f.change(); err != nil {
		return err
	}
	return f.Bucket.Put(ctx, key, body)
}

func (f *faultyBucket) Copy(ctx context.Context, src, dst string) error {
	if err := f.change(); err != nil {
		return err
	}
	return f.Bucket.Copy(ctx, src, dst)
}

func (f *faultyBucket) Delete(ctx context.Context, key string) error {
	if err := f.change(); err != nil {
		return err
	}
	return f.Bucket.Delete(ctx, key)
}

func (f *faultyBucket) arm(failAt int) {
	f.mu.Lock()
	f.armed, f.ops, f.failAt = true, 0, failAt
	f.mu.Unlock()
}

func (f *faultyBucket) disarm() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	return f.ops
}

func cloneBucket(t testing.TB, b *memstore.Bucket) *memstore.Bucket {
	c := memstore.New()
	for k, v := range b.Objects() {
		put(t, c, k, v)
	}
	return c
}

// untilCommit runs a step's phases up to its commits and returns the dates
// ready to commit, with the commit total.
func untilCommit(t testing.TB, s *job.Step) ([]civil.Date, int) {
	t.Helper()
	ctx := context.Background()
	next, err := s.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range next.Maps {
		n, err := s.Map(ctx, i, next.Maps)
		if err != nil {
			t.Fatal(err)
		}
		if n.Split {
			next = n
		}
	}
	next, err = s.Split(ctx, next.Shards)
	if err != nil {
		t.Fatal(err)
	}
	dates, total := next.Commits, next.CommitTotal
	encodes := next.Encodes
	for _, r := range next.Reduces {
		n, err := s.Reduce(ctx, r.Date, r.Slice)
		if err != nil {
			t.Fatal(err)
		}
		encodes = append(encodes, n.Encodes...)
	}
	for _, e := range encodes {
		n, err := s.Encode(ctx, e.Date, e.Fragment, e.Fragments)
		if err != nil {
			t.Fatal(err)
		}
		dates = append(dates, n.Commits...)
	}
	return dates, total
}

// TestCommitInterruptedAndRetried fails a partition's commit at each of its
// storage changes in turn and retries it: after a failure the partition
// still holds all of one build (old or new), and the retry always ends with
// exactly the new build's files and rows, and no staged file left.
func TestCommitInterruptedAndRetried(t *testing.T) {
	t.Parallel()
	in := duplicatedData(t)
	w := window(t, "2026-10-30", "2026-10-30")
	spec := testSpec()
	spec.TargetFileBytes = 2 << 10
	base := memstore.New()
	runJob(t, newStep(in, memstore.New(), base, spec, w))
	oldFiles := partitionFiles(t, base, "2026-10-30")
	oldRows := len(readPartition(t, base, "2026-10-30").rows)
	spec.TargetFileBytes = 3 << 10 // the new build has other files

	newBuild := func() (*job.Step, *faultyBucket, civil.Date, int) {
		out := &faultyBucket{Bucket: cloneBucket(t, base)}
		s := newStep(in, memstore.New(), out, spec, w)
		s.RunID, s.Force = "run-new", true
		dates, total := untilCommit(t, s)
		if len(dates) != 1 {
			t.Fatalf("dates to commit %v", dates)
		}
		return s, out, dates[0], total
	}
	// A clean commit, to count its changes and know the new build.
	s, out, d, total := newBuild()
	out.arm(0)
	if _, err := s.Commit(t.Context(), d, total); err != nil {
		t.Fatal(err)
	}
	changes := out.disarm()
	newFiles := partitionFiles(t, out, "2026-10-30")
	if len(newFiles) == len(oldFiles) || changes < 2*len(newFiles)+len(oldFiles) {
		t.Fatalf("new build %d files (old %d), %d changes", len(newFiles), len(oldFiles), changes)
	}
	var sawOldOnly, sawBoth int // the failures before any copy, and inside the window
	for k := 1; k <= changes; k++ {
		s, out, d, total := newBuild()
		out.arm(k)
		_, err := s.Commit(t.Context(), d, total)
		out.disarm()
		if !errors.Is(err, errInjected) {
			t.Fatalf("change %d: commit error %v, want the injected failure", k, err)
		}
		files := partitionFiles(t, out, "2026-10-30")
		hasAll := func(want []string) bool {
			for _, f := range want {
				if !slices.Contains(files, f) {
					return false
				}
			}
			return true
		}
		switch {
		case hasAll(oldFiles) && hasAll(newFiles):
			sawBoth++
		case hasAll(oldFiles):
			sawOldOnly++
		case !hasAll(newFiles):
			t.Fatalf("change %d: after the failure the partition holds %v: neither build is whole", k, files)
		}
		if _, err := s.Commit(t.Context(), d, total); err != nil {
			t.Fatalf("change %d: retry: %v", k, err)
		}
		files = partitionFiles(t, out, "2026-10-30")
		if !slices.Equal(files, newFiles) {
			t.Fatalf("change %d: after the retry the partition holds %v, want %v", k, files, newFiles)
		}
		tb := readPartition(t, out.Bucket, "2026-10-30")
		if len(tb.rows) != oldRows || len(tb.byID(t)) != oldRows {
			t.Fatalf("change %d: %d rows after the retry, want %d", k, len(tb.rows), oldRows)
		}
		staged, _ := storage.ListKeys(t.Context(), out, "_staging/", nil)
		if len(staged) != 0 {
			t.Fatalf("change %d: staged files left: %v", k, staged)
		}
	}
	if sawOldOnly == 0 || sawBoth == 0 {
		t.Errorf("failures left the old build alone %d times and both builds %d times: the test missed a stage", sawOldOnly, sawBoth)
	}
	if !strings.HasPrefix(newFiles[0], "year=2026/month=10/date=2026-10-30/part-00000-") {
		t.Errorf("file name %s", newFiles[0])
	}
}

// A partition left holding two builds' files (a commit cut short between
// its copies and its deletes, whose run was then cancelled) is rebuilt by
// the next run even though its input has not changed, and so is one that
// lost a file; an intact one is left alone.
func TestDriftedPartitionIsRebuilt(t *testing.T) {
	t.Parallel()
	spec := testSpec()
	ctx := context.Background()
	in, out := memstore.New(), memstore.New()
	put(t, in, dayFolder("ios", "2026-10-01")+"a.gz", gz(ev("a", "2026-10-01T18:00:00Z"), ev("b", "2026-10-02T18:00:00Z"), ev("c", "2026-10-03T18:00:00Z")))
	w := window(t, "2026-10-01", "2026-10-03")
	runJob(t, newStep(in, memstore.New(), out, spec, w))
	doubled := partitionFiles(t, out, "2026-10-01")[0]
	if err := storage.Copy(ctx, out, doubled, strings.Replace(doubled, "part-00000-", "part-00000-0ther", 1)); err != nil {
		t.Fatal(err)
	}
	if n := len(readPartition(t, out, "2026-10-01").rows); n != 2 {
		t.Fatalf("set-up: %d rows, want the one row twice", n)
	}
	if err := out.Delete(ctx, partitionFiles(t, out, "2026-10-02")[0]); err != nil {
		t.Fatal(err)
	}
	sum := runJob(t, newStep(in, memstore.New(), out, spec, w)).summary
	want := map[string]string{"2026-10-01": bookmark.ReasonFilesDrifted, "2026-10-02": bookmark.ReasonFilesDrifted}
	if !maps.Equal(sum.Rebuilt, want) {
		t.Fatalf("rebuilt %v, want %v", sum.Rebuilt, want)
	}
	for _, d := range []string{"2026-10-01", "2026-10-02", "2026-10-03"} {
		if p := readPartition(t, out, d); len(p.rows) != 1 || p.files != 1 {
			t.Errorf("%s: %d rows in %d files, want 1 in 1", d, len(p.rows), p.files)
		}
	}
}
