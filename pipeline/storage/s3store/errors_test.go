package s3store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sluice/internal/testenv"
	"sluice/pipeline/fault"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/s3store"
)

// Errors no retry can fix are permanent, name the location and say what to
// fix; a throttled server is not.
func TestIntegrationPermanentErrors(t *testing.T) {
	t.Parallel()
	srv := testenv.StartS3(t)
	bucket := srv.NewBucket(t)
	ctx := t.Context()
	for _, c := range []struct {
		name     string
		bucket   string
		opts     func(*s3store.Options)
		location string
		hint     string
	}{
		{"no such bucket", "no-such-bucket", nil, "s3://no-such-bucket", "the bucket does not exist"},
		{"unknown access key", bucket, func(o *s3store.Options) { o.AccessKey = "nobody" }, "s3://" + bucket, "AWS_ACCESS_KEY_ID"},
		{"wrong secret", bucket, func(o *s3store.Options) { o.SecretKey = "wrong" }, "s3://" + bucket, "AWS_SECRET_ACCESS_KEY"},
		{"wrong region", bucket, func(o *s3store.Options) { o.Region = "eu-west-1" }, "s3://" + bucket, "-s3-region"},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := options(srv)
			if c.opts != nil {
				c.opts(&opts)
			}
			b, err := s3store.New(ctx, c.bucket, "", opts)
			if err != nil {
				t.Fatal(err)
			}
			_, getErr := b.Get(ctx, "k")
			_, listErr := b.ListDirs(ctx, "")
			putErr := b.Put(ctx, "k", strings.NewReader("v"))
			for op, err := range map[string]error{"get": getErr, "list": listErr, "put": putErr} {
				if !fault.IsPermanent(err) || errors.Is(err, storage.ErrNotExist) ||
					!strings.Contains(err.Error(), c.location) || !strings.Contains(err.Error(), c.hint) {
					t.Errorf("%s: %v; want a permanent error naming %s and %q", op, err, c.location, c.hint)
				}
			}
		})
	}

	t.Run("throttled", func(t *testing.T) {
		proxy := testenv.StartS3Proxy(t, srv, testenv.S3Faults{FailEvery: 1})
		b, err := s3store.New(ctx, bucket, "", options(proxy.S3Server))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, "k"); err == nil || fault.IsPermanent(err) || !strings.Contains(err.Error(), "SlowDown") {
			t.Errorf("get from a throttling server: %v; want a transient SlowDown", err)
		}
		if proxy.Fails() < 2 {
			t.Errorf("the SDK tried %d times, want its retries", proxy.Fails())
		}
	})
}

// A configuration no request can work with fails New, permanently, saying
// which setting is wrong; the environment's endpoint is checked too.
func TestBadConfigurationIsPermanent(t *testing.T) {
	for _, c := range []struct {
		opts s3store.Options
		want string
	}{
		{s3store.Options{Endpoint: "127.0.0.1:7070"}, `s3 endpoint: "127.0.0.1:7070" is not an endpoint URL`},
		{s3store.Options{Endpoint: "not a url"}, `s3 endpoint: "not a url" is not an endpoint URL`},
		{s3store.Options{Region: "us east 1"}, `s3 region: "us east 1" is not a region name`},
		{s3store.Options{AccessKey: "k"}, "access key and secret key must be set together"},
	} {
		_, err := s3store.New(context.Background(), "b", "", c.opts)
		if !fault.IsPermanent(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v; want a permanent error saying %q", c.opts, err, c.want)
		}
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "localhost:9000")
	_, err := s3store.New(context.Background(), "b", "", s3store.Options{})
	if !fault.IsPermanent(err) || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL_S3") {
		t.Errorf("New with AWS_ENDPOINT_URL_S3=localhost:9000: %v; want a permanent error naming the variable", err)
	}
}
