package s3store_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"sluice/internal/testenv"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/storage/storagetest"
)

// options returns Options for the test server, path-style as versitygw on a
// bare loopback address requires.
func options(srv testenv.S3Server) s3store.Options {
	return s3store.Options{
		Endpoint:  srv.Endpoint,
		Region:    srv.Region,
		PathStyle: true,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
	}
}

func TestIntegrationAcceptance(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	t.Run("Root", func(t *testing.T) {
		b, err := s3store.New(t.Context(), srv.NewBucket(t), "", options(srv))
		if err != nil {
			t.Fatal(err)
		}
		storagetest.AcceptanceTest(t, b)
	})
	t.Run("Prefix", func(t *testing.T) {
		bucket := srv.NewBucket(t)
		b, err := s3store.New(t.Context(), bucket, "some/prefix", options(srv))
		if err != nil {
			t.Fatal(err)
		}
		// An object beside the prefix must stay invisible.
		outside, err := s3store.New(t.Context(), bucket, "", options(srv))
		if err != nil {
			t.Fatal(err)
		}
		if err := outside.Put(t.Context(), "some/prefixed-sibling", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		storagetest.AcceptanceTest(t, b)
		if _, err := outside.Stat(t.Context(), "some/prefixed-sibling"); err != nil {
			t.Errorf("object outside the prefix: %v", err)
		}
	})
	t.Run("Multipart", func(t *testing.T) {
		// 5 MiB parts turn the 20 MiB object into a four-part upload.
		opts := options(srv)
		opts.PartSize = s3store.MinPartSize
		b, err := s3store.New(t.Context(), srv.NewBucket(t), "", opts)
		if err != nil {
			t.Fatal(err)
		}
		storagetest.AcceptanceTest(t, b)
	})
}

func TestIntegrationEndpointFromEnv(t *testing.T) {
	srv := testenv.StartS3(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", srv.Region)
	b, err := s3store.New(t.Context(), bucket, "", s3store.Options{PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "k", strings.NewReader("v")); err != nil {
		t.Fatalf("put with endpoint and credentials from the environment: %v", err)
	}

	// An explicit Endpoint wins over the environment.
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
	opts := options(srv)
	b, err = s3store.New(t.Context(), bucket, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(t.Context(), "k"); err != nil {
		t.Fatalf("stat with explicit endpoint: %v", err)
	}
}

func TestIntegrationMissingBucket(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	b, err := s3store.New(t.Context(), "no-such-bucket", "", options(srv))
	if err != nil {
		t.Fatal(err)
	}
	// A missing bucket is a configuration error, not a missing object.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if _, err := b.Get(ctx, "k"); err == nil || errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Get in a missing bucket = %v, want an error other than ErrNotExist", err)
	}
}

func TestLocation(t *testing.T) {
	t.Parallel()
	for prefix, want := range map[string]string{"": "s3://b", "p/q": "s3://b/p/q", "/p/q/": "s3://b/p/q"} {
		b, err := s3store.New(t.Context(), "b", prefix, s3store.Options{Endpoint: "http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Location(); got != want {
			t.Errorf("prefix %q: Location = %q, want %q", prefix, got, want)
		}
	}
}

func TestIntegrationMultipartChecksums(t *testing.T) {
	srv := testenv.StartS3(t)
	// Both the SDK default (CRC32 on every part) and the setting for
	// servers without checksum support must complete an upload.
	for _, mode := range []string{"when_supported", "when_required"} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv("AWS_REQUEST_CHECKSUM_CALCULATION", mode)
			opts := options(srv)
			opts.PartSize = s3store.MinPartSize
			b, err := s3store.New(t.Context(), srv.NewBucket(t), "", opts)
			if err != nil {
				t.Fatal(err)
			}
			size := int64(2*s3store.MinPartSize + 1)
			if err := b.Put(t.Context(), "k", io.LimitReader(zeros{}, size)); err != nil {
				t.Fatal(err)
			}
			info, err := b.Stat(t.Context(), "k")
			if err != nil {
				t.Fatal(err)
			}
			// A multipart ETag ends in -<number of parts>.
			if info.Size != size || !strings.HasSuffix(info.ETag, "-3") {
				t.Errorf("Stat = %+v, want size %d and a three-part ETag", info, size)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Copy is a server-side copy; publishing an output partition uses it.
func TestIntegrationCopy(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	ctx := t.Context()
	b, err := s3store.New(ctx, srv.NewBucket(t), "lake/out", options(srv))
	if err != nil {
		t.Fatal(err)
	}
	src := "_staging/year=2024/month=3/date=2024-03-09/part 00000.parquet.7f3a"
	dst := "year=2024/month=3/date=2024-03-09/part-00000.parquet"
	if err := b.Put(ctx, src, strings.NewReader("parquet bytes")); err != nil {
		t.Fatal(err)
	}
	if err := b.Copy(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	r, err := b.Get(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "parquet bytes" {
		t.Fatalf("copied %q", got)
	}
	if err := b.Copy(ctx, "missing", dst); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("copy of a missing key: %v", err)
	}
}
