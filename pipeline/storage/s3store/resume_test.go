package s3store_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"sluice/internal/testenv"
	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/storage/storagetest"
)

// proxied returns a bucket that reaches bucket through proxy, and one that
// reaches it directly.
func proxied(t *testing.T, srv testenv.S3Server, proxy *testenv.S3Proxy, bucket string, resumes int) (via, direct *s3store.Bucket) {
	t.Helper()
	opts := options(proxy.S3Server)
	opts.ReadResumes = resumes
	opts.ResumeBackoff = time.Millisecond
	via, err := s3store.New(t.Context(), bucket, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	direct, err = s3store.New(t.Context(), bucket, "", options(srv))
	if err != nil {
		t.Fatal(err)
	}
	return via, direct
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readAll reads what Get or GetRange opened.
func readAll(rc io.ReadCloser, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// A body cut mid-stream resumes from where it broke: every read through the
// cutting proxy gives the bytes a direct read gives.
func TestIntegrationCutBodiesResume(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	// Every other GET is cut, so each read's first response breaks and its
	// resume gets through.
	proxy := testenv.StartS3Proxy(t, srv, testenv.S3Faults{CutEvery: 2, CutAfter: 100 << 10})
	via, direct := proxied(t, srv, proxy, srv.NewBucket(t), 0)
	ctx := t.Context()
	data := randomBytes(1 << 20)
	if err := direct.Put(ctx, "k", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ off, n int64 }{{0, -2}, {0, -1}, {1000, 700_000}, {300_000, -1}, {900_000, 1 << 20}} {
		var got, want []byte
		var err error
		if c.n == -2 {
			got, err = readAll(via.Get(ctx, "k"))
			want, _ = readAll(direct.Get(ctx, "k"))
		} else {
			got, err = readAll(via.GetRange(ctx, "k", c.off, c.n))
			want, _ = readAll(direct.GetRange(ctx, "k", c.off, c.n))
		}
		if err != nil {
			t.Errorf("read %+v through the proxy: %v", c, err)
		} else if !bytes.Equal(got, want) || len(want) == 0 {
			t.Errorf("read %+v through the proxy: %d bytes differ from the %d read directly", c, len(got), len(want))
		}
	}
	if proxy.Cuts() != 5 {
		t.Errorf("the proxy cut %d responses, want 5 (the first of each read)", proxy.Cuts())
	}
}

// The bucket contract holds while GET bodies keep breaking.
func TestIntegrationAcceptanceThroughCuts(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	proxy := testenv.StartS3Proxy(t, srv, testenv.S3Faults{CutEvery: 3, CutAfter: 5, MaxCutsPerKey: s3store.DefaultReadResumes})
	via, _ := proxied(t, srv, proxy, srv.NewBucket(t), 0)
	storagetest.AcceptanceTest(t, via)
	if proxy.Cuts() == 0 {
		t.Error("the proxy cut no response")
	}
	t.Logf("%d of %d object GETs cut", proxy.Cuts(), proxy.Gets())
}

// A body that breaks more often than the budget of resumes fails, saying
// how many were tried.
func TestIntegrationCutBodiesFailAfterTheBudget(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	proxy := testenv.StartS3Proxy(t, srv, testenv.S3Faults{CutEvery: 1, CutAfter: 10 << 10})
	via, direct := proxied(t, srv, proxy, srv.NewBucket(t), 3)
	ctx := t.Context()
	if err := direct.Put(ctx, "k", bytes.NewReader(randomBytes(1<<20))); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(via.Get(ctx, "k"))
	if err == nil || !strings.Contains(err.Error(), "after 3 resumes") || !strings.Contains(err.Error(), "get k") {
		t.Errorf("read of a body cut every time: %d bytes, %v; want an error naming the key and 3 resumes", len(got), err)
	}
	if proxy.Cuts() != 4 {
		t.Errorf("the proxy cut %d responses, want 4 (the first and 3 resumes)", proxy.Cuts())
	}
}

// An object replaced while it is read is an error, never the old version's
// head spliced to the new one's tail.
func TestIntegrationResumeRefusesAReplacedObject(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	proxy := testenv.StartS3Proxy(t, srv, testenv.S3Faults{CutEvery: 1, CutAfter: 64 << 10})
	via, direct := proxied(t, srv, proxy, srv.NewBucket(t), 0)
	ctx := t.Context()
	old := randomBytes(1 << 20)
	if err := direct.Put(ctx, "k", bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	r, err := via.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 1)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	if err := direct.Put(ctx, "k", strings.NewReader(strings.Repeat("new version ", 100_000))); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	got := append(head, rest...)
	if err == nil || !strings.Contains(err.Error(), "changed while it was read") {
		t.Errorf("read across a replacement: %d bytes, %v; want the object-changed error", len(got), err)
	}
	if !bytes.HasPrefix(old, got) {
		t.Errorf("the %d bytes delivered are not the old version's head", len(got))
	}
}
