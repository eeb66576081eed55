package config

import (
	"flag"
	"strings"
	"testing"
)

func TestBadS3SettingsNameTheirFlag(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ args, want string }{
		{"-s3-endpoint 127.0.0.1:9000", `-s3-endpoint (SLUICE_S3_ENDPOINT): "127.0.0.1:9000" is not an endpoint URL`},
		{"-s3-region us_east_1", `-s3-region (SLUICE_S3_REGION): "us_east_1" is not a region name`},
		{"-s3-read-resumes -1", "-s3-read-resumes (SLUICE_S3_READ_RESUMES): must be 0 or more"},
	} {
		var cfg Common
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		cfg.Register(fs)
		if err := fs.Parse(strings.Fields(c.args)); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.args, err, c.want)
		}
	}
	var cfg Common
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.Register(fs)
	if err := fs.Parse([]string{"-s3-read-resumes", "0", "-s3-endpoint", "https://s3.example.com:9000"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || cfg.S3.ReadResumes >= 0 {
		t.Errorf("-s3-read-resumes 0: %v, ReadResumes %d; want no error and none", err, cfg.S3.ReadResumes)
	}
}
