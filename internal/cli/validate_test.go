package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sluice/pipeline/catalog"
	"sluice/pipeline/storage/filestore"
)

// A workflow file with five different mistakes: validate reports all five,
// each with its line, and exits 2; the shipped example is fine.
func TestValidateReportsEveryProblemWithItsLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cat, err := filestore.New(filepath.Join(dir, "catalog"))
	if err != nil {
		t.Fatal(err)
	}
	store := catalog.New(cat)
	ctx := context.Background()
	for _, tbl := range []string{"ios", "android"} {
		cols := []catalog.Column{
			{Name: "messageId", Type: catalog.Prim(catalog.KindString)},
			{Name: "timestamp", Type: catalog.Prim(catalog.KindString)},
			{Name: "type", Type: catalog.Prim(catalog.KindString)},
			{Name: "event", Type: catalog.Prim(catalog.KindString)},
			{Name: "properties", Type: catalog.StructOf(catalog.Column{Name: "revenue", Type: catalog.Prim(catalog.KindDouble)})},
		}
		if _, _, err := store.PutTable(ctx, catalog.Table{Database: "segmentlogs", Name: tbl, Location: "file://" + dir + "/raw/segment-logs/" + tbl + "/", Format: "json", Columns: cols}); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "bad.yaml")
	body := `name: bad
catalog: file://` + dir + `/catalog
steps:
  - name: start
    trigger: {type: ON_DEMAND, actions: [ios, daily]}
  - name: ios
    crawler: {location: file://` + dir + `/raw, path: segment-logs/ios/, database: segmentlogs, table: ios, recrawl: sometimes}
  - name: android
    crawler: {location: file://` + dir + `/raw, path: segment-logs/android/, database: segmentlogs, table: android}
  - name: daily
    job:
      input: file://` + dir + `/raw
      output: file://` + dir + `/out
      scratch: s3:/scratch
      transform:
        time_zone: Pacific
        where: 'type == "track" &&'
        derive:
          - {name: revenue_cents, expression: 'properties_revenu * 100', type: long}
`
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = Main(ctx, []string{"validate", file}, &out)
	if code := ExitCode(err); code != ExitUsage {
		t.Fatalf("exit %d (%v), want %d\n%s", code, err, ExitUsage, out.String())
	}
	text := out.String()
	for _, want := range []struct {
		line int
		text string
	}{
		{7, "crawler.recrawl: must be new_folders or everything"}, // an unknown value
		{8, "no trigger starts this step"},                        // a step nothing starts
		{14, "job.scratch: \"s3:/scratch\" is not a location"},    // a malformed location
		{16, "time_zone: "},                                       // a bad time zone
		{17, "where: at 1:19: Syntax error"},                      // an expression that does not compile
		{19, "column properties_revenu does not exist in segmentlogs.ios or segmentlogs.android (did you mean properties_revenue?)"},
	} {
		re := regexp.MustCompile(regexp.QuoteMeta(file) + `:` + regexp.QuoteMeta(itoa(want.line)) + `:\d+: .*` + regexp.QuoteMeta(want.text))
		if !re.MatchString(text) {
			t.Errorf("no problem %q on line %d in\n%s", want.text, want.line, text)
		}
	}
	if n := strings.Count(text, "\n"); n != 6 {
		t.Errorf("%d problems, want 6:\n%s", n, text)
	}
	// The shipped example validates.
	out.Reset()
	if err := Main(ctx, []string{"validate", "-check-columns=false", "../../workflows/mobile-user.yaml"}, &out); err != nil {
		t.Errorf("the example: %v\n%s", err, out.String())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
