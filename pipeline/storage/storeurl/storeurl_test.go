package storeurl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sluice/internal/testenv"
	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/storage/storeurl"
)

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	want := "file://" + filepath.ToSlash(filepath.Join(dir, "data"))
	for _, loc := range []string{"file://" + filepath.ToSlash(dir) + "/data", filepath.Join(dir, "data"), "data", "./data/", "file://localhost" + filepath.ToSlash(dir) + "/data"} {
		b, err := storeurl.Open(t.Context(), loc, s3store.Options{})
		if err != nil {
			t.Errorf("Open(%q): %v", loc, err)
			continue
		}
		if got := b.Location(); got != want {
			t.Errorf("Open(%q).Location() = %q, want %q", loc, got, want)
		}
	}
	b, err := storeurl.Open(t.Context(), "data", s3store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "x/y", strings.NewReader("z")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "data", "x", "y")); err != nil || string(got) != "z" {
		t.Errorf("file on disk = %q, %v", got, err)
	}
}

func TestOpenBad(t *testing.T) {
	for _, loc := range []string{"", "gs://bucket/x", "s3:///nobucket", "file://host/path", "file://relative", "s3://bkt/p?x=1", "s3://bkt/%zz",
		"s3:/raw", "s3:raw", "file:/abs/path", "s3://Bad_Bucket/x", "s3://b/x", "https://example.com/x"} {
		_, err := storeurl.Open(t.Context(), loc, s3store.Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", loc)
			continue
		}
		if loc != "" && !strings.Contains(err.Error(), loc) {
			t.Errorf("Open(%q) error %q does not name the location", loc, err)
		}
	}
}

func TestIntegrationOpenS3(t *testing.T) {
	srv := testenv.StartS3(t)
	bucket := srv.NewBucket(t)
	opts := s3store.Options{
		Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
	}
	loc := "s3://" + bucket + "/some/prefix"
	b, err := storeurl.Open(t.Context(), loc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b.Location() != loc {
		t.Errorf("Location = %q, want %q", b.Location(), loc)
	}
	if err := b.Put(t.Context(), "k.txt", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}
	// versitygw's posix backend maps keys to files, which shows where the
	// object really went.
	if got, err := os.ReadFile(filepath.Join(srv.Dir, bucket, "some", "prefix", "k.txt")); err != nil || string(got) != "v" {
		t.Errorf("object under prefix = %q, %v", got, err)
	}
}

func TestJoin(t *testing.T) {
	cases := []struct{ loc, sub, want string }{
		{"s3://b", "x/y", "s3://b/x/y"},
		{"s3://b/p/", "/x/", "s3://b/p/x"},
		{"file:///", "x", "file:///x"},
		{"/data", "", "/data"},
		{"rel", "x", "rel/x"},
	}
	for _, c := range cases {
		if got := storeurl.Join(c.loc, c.sub); got != c.want {
			t.Errorf("Join(%q, %q) = %q, want %q", c.loc, c.sub, got, c.want)
		}
	}
}
