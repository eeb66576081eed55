package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadSettingsNameTheirFlag(t *testing.T) {
	t.Parallel()
	var c Common
	c.Register(flag.NewFlagSet("t", flag.ContinueOnError))
	c.RedisURL = "http://nope"
	if _, err := c.Redis(); err == nil || !strings.Contains(err.Error(), "-redis-url (SLUICE_REDIS_URL)") {
		t.Errorf("redis: %v", err)
	}
	c.LogLevel = "loud"
	if _, err := c.Logger(); err == nil || !strings.Contains(err.Error(), "-log-level") {
		t.Errorf("log level: %v", err)
	}
	c.LogLevel, c.LogFormat = "info", "xml"
	if _, err := c.Logger(); err == nil || !strings.Contains(err.Error(), "-log-format") {
		t.Errorf("log format: %v", err)
	}
	c.LogFormat = "text"
	for _, n := range []string{"0", "-3", "3661"} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var d Common
		d.Register(fs)
		if err := Parse(fs, []string{"-max-window-days", n}); err != nil {
			t.Fatal(err)
		}
		if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "-max-window-days (SLUICE_MAX_WINDOW_DAYS): must be from 1 to 3660, got "+n) {
			t.Errorf("max window days %s: %v", n, err)
		}
	}
	for _, u := range []string{"redis://127.0.0.1:6379/2", "rediss://:secret@127.0.0.1:6380/0", "redis-sentinel://127.0.0.1:26379?master=mymaster"} {
		c.RedisURL = u
		if _, err := c.Redis(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestLoadWorkflowsChecksTheJobSpec(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "workflows", "mobile-user.yaml")
	raw, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := strings.Replace(string(raw), "time_zone: America/Los_Angeles", "time_zone: Pacific/Nowhere", 1)
	bad = strings.Replace(bad, "format: parquet", "format: parquet\n        fromat: csv", 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadWorkflows(dir)
	if err == nil || !strings.Contains(err.Error(), "steps[5] (mobile-user-daily).job.transform") || !strings.Contains(err.Error(), "fromat") {
		t.Fatalf("error %v, want it to name the job's transform and the unknown field", err)
	}
	for pins, want := range map[string]string{
		"{properties.score: decimal}":       `columns.properties.score: "decimal" is not a column type`,
		"{properties.score: timestamp_utc}": "columns.properties.score: timestamp_utc cannot be pinned",
		"{messageId: string}":               "columns.messageId: the dedupe key and the timestamp field have fixed types",
	} {
		pinned := strings.Replace(string(raw), "format: parquet", "format: parquet\n        columns: "+pins, 1)
		if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(pinned), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadWorkflows(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("columns %s: %v, want %q", pins, err, want)
		}
	}
	wfs, err := LoadWorkflows(root)
	if err != nil || wfs["mobile-user"] == nil {
		t.Fatalf("example: %v", err)
	}
	if _, err := LoadWorkflows(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "-workflows") {
		t.Fatalf("missing path: %v", err)
	}
}

func TestParseQueues(t *testing.T) {
	t.Parallel()
	q, err := ParseQueues("crawl=2, transform=6,extra")
	if err != nil || fmt.Sprint(q) != "map[crawl:2 extra:1 transform:6]" {
		t.Fatalf("%v %v", q, err)
	}
	for _, bad := range []string{"", "crawl=0", "crawl=x"} {
		if _, err := ParseQueues(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRedactHidesURLPasswords(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://:S3cretPW@redis:6379/0":                 "redis://:xxxxx@redis:6379/0",
		"dial redis-sentinel://u:pw@a:1,b:2?master=m: x": "dial redis-sentinel://u:xxxxx@a:1,b:2?master=m: x",
		"https://hooks.example/x no password":            "https://hooks.example/x no password",
	} {
		if got := RedactText(in); got != want {
			t.Errorf("RedactText(%q) = %q, want %q", in, got, want)
		}
	}
}

// -temp-limit takes 0 or a size of at least 16 MiB, and names itself when
// it is anything else.
func TestTempLimit(t *testing.T) {
	t.Parallel()
	for arg, want := range map[string]int64{"0": 0, "4GiB": 4 << 30, "16MiB": 16 << 20, "1KiB": -1, "lots": -1} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var w Worker
		w.Register(fs)
		if err := Parse(fs, []string{"-temp-limit", arg, "-temp-dir", t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		err := w.Validate()
		switch {
		case want < 0 && (err == nil || !strings.Contains(err.Error(), "-temp-limit (SLUICE_TEMP_LIMIT)")):
			t.Errorf("-temp-limit %s: %v, want an error naming the flag", arg, err)
		case want >= 0 && (err != nil || w.TempLimit != want):
			t.Errorf("-temp-limit %s: %d, %v; want %d", arg, w.TempLimit, err, want)
		}
	}
}
