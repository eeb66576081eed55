package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The README's first command: the whole workflow embedded, on generated
// data, in a fresh folder.
func TestDemoRunsTheWholeWorkflowEmbedded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Three demos take about 3 s alone; the bound is for a loaded suite
	// (one run of the whole suite saw the third stall past 2 minutes).
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Main(ctx, []string{"demo", "-dir", dir}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"generating sample Segment logs",
		"SUCCEEDED, window 2024-03-09..2024-03-11",
		"segmentlogs.ios", "segmentlogs.android", "segmentlogs.mobile", "books balanced",
		"next (every other command", "query the table", "open the console",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Every step SUCCEEDED: the run line plus 8 steps; and the output is
	// short enough to read (an analyst needs about 30 lines, not 500).
	if n := strings.Count(text, "SUCCEEDED"); n < 9 {
		t.Errorf("%d SUCCEEDED in the output, want at least 9", n)
	}
	if n := strings.Count(text, "\n"); n > 50 {
		t.Errorf("the demo printed %d lines, want at most 50:\n%s", n, text)
	}
	// The printed row counts are those of the partitions on disk.
	rows := regexp.MustCompile(`year=2024/month=3/date=(2024-03-\d\d)\s+1\s+(\d+)`).FindAllStringSubmatch(text, -1)
	if len(rows) != 3 {
		t.Fatalf("want 3 output partitions with row counts, got %v\n%s", rows, text)
	}
	for _, r := range rows {
		files, _ := filepath.Glob(filepath.Join(dir, "mobile_user", "year=2024", "month=3", "date="+r[1], "part-00000-*.parquet"))
		if len(files) != 1 {
			t.Errorf("partition %s: files %v, want one part-00000-<build>.parquet", r[1], files)
		}
	}
	// Scratch holds nothing once the job step has succeeded.
	var left []string
	_ = filepath.WalkDir(filepath.Join(dir, "scratch"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("scratch files left after the run: %v", left)
	}
	// The catalog command reads what the demo's crawlers wrote.
	cat := "file://" + filepath.Join(dir, "catalog")
	var show, ddl bytes.Buffer
	if err := Main(ctx, []string{"catalog", "-catalog", cat, "show", "segmentlogs.android"}, &show); err != nil {
		t.Fatalf("catalog show: %v", err)
	}
	if !strings.Contains(show.String(), "userAgent") || !strings.Contains(show.String(), "received_day") {
		t.Errorf("catalog show segmentlogs.android:\n%s", show.String())
	}
	err := Main(ctx, []string{"catalog", "-catalog", cat, "ddl", "-map-location", "file://" + dir + "=s3://lake", "segmentlogs.mobile"}, &ddl)
	if err != nil {
		t.Fatalf("catalog ddl: %v", err)
	}
	for _, want := range []string{"CREATE EXTERNAL TABLE IF NOT EXISTS `segmentlogs`.`mobile`", "`message_id` string", "PARTITIONED BY (`year` int, `month` int, `date` string)",
		"LOCATION 's3://lake/mobile_user", "ADD IF NOT EXISTS", "PARTITION (`year`=2024, `month`=3, `date`='2024-03-10')"} {
		if !strings.Contains(ddl.String(), want) {
			t.Errorf("ddl lacks %q:\n%s", want, ddl.String())
		}
	}
	// A second demo reuses the data and replaces the partitions: same counts.
	var again bytes.Buffer
	if err := Main(ctx, []string{"demo", "-dir", dir}, &again); err != nil {
		t.Fatalf("second demo: %v", err)
	}
	if !strings.Contains(again.String(), "using the sample logs already in") {
		t.Errorf("second demo regenerated the data")
	}
	// What it suggests works after the demo: its own -v and -force, not
	// scheduler show of a run whose Redis is gone, nor start -force.
	if s := again.String(); strings.Contains(s, "scheduler show") || strings.Contains(s, "start with -force") || !strings.Contains(s, "scheduler demo -v for every detail") ||
		!strings.Contains(s, "rebuild them anyway with -force") || !strings.Contains(s, "export SLUICE_RAW=file://"+dir+"/raw") {
		t.Errorf("second demo suggests what does not work:\n%s", s)
	}
	var forced bytes.Buffer
	if err := Main(ctx, []string{"demo", "-dir", dir, "-force"}, &forced); err != nil || !strings.Contains(forced.String(), "rebuilt (forced)") {
		t.Errorf("demo -force: %v\n%s", err, forced.String())
	}
	rows2 := regexp.MustCompile(`year=2024/month=3/date=(2024-03-\d\d)\s+1\s+(\d+)`).FindAllStringSubmatch(again.String(), -1)
	if len(rows2) != 3 || rows2[0][2] != rows[0][2] || rows2[2][2] != rows[2][2] {
		t.Errorf("second demo partitions %v, first %v", rows2, rows)
	}
}
