package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/testenv"
	"sluice/pipeline/civil"
)

// Every `go build` the docs tell a reader to run that names several
// packages has -o: without it Go builds them and writes no binary.
func TestDocsBuildCommandsWriteBinaries(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"../../README.md", "../../docs/OPERATIONS.md", "../../docs/CONFIGURATION.md", "../../deploy/README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range regexp.MustCompile("go build[^`\n]*").FindAllString(string(b), -1) {
			if strings.Count(cmd, "./cmd/") > 1 && !strings.Contains(cmd, "-o ") {
				t.Errorf("%s: %q builds several packages without -o: it writes no binary", doc, cmd)
			}
		}
	}
}

// A bad flag is printed once (by the flag package, with the usage), not
// again by main; a misspelled command gets a suggestion; show and cancel
// say they take a run id.
func TestUsageMistakes(t *testing.T) {
	t.Parallel()
	err := Main(context.Background(), []string{"demo", "-bogus"}, &bytes.Buffer{})
	if ExitCode(err) != ExitUsage || !Reported(err) {
		t.Errorf("demo -bogus: exit %d, reported %v", ExitCode(err), Reported(err))
	}
	err = Main(context.Background(), []string{"valdate"}, &bytes.Buffer{})
	if ExitCode(err) != ExitUsage || Reported(err) || !strings.Contains(err.Error(), "did you mean validate?") {
		t.Errorf("valdate: %v", err)
	}
	for _, name := range []string{"show", "cancel"} {
		var out bytes.Buffer
		fs := newFlags(name)
		fs.SetOutput(&out)
		fs.Usage()
		if !strings.Contains(out.String(), "RUN_ID") {
			t.Errorf("%s -h does not mention the run id:\n%s", name, out.String())
		}
	}
}

// catalog list says where it looked: a location that does not exist is an
// error naming it, an empty catalog says it has no tables, and the flags
// may follow the subcommand.
func TestCatalogListSaysWhereItLooked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	err := Main(ctx, []string{"catalog", "list", "-catalog", "file://" + dir + "/nonexistent"}, &bytes.Buffer{})
	if ExitCode(err) != ExitError || !strings.Contains(err.Error(), dir+"/nonexistent") {
		t.Errorf("catalog list of a missing location: exit %d, %v", ExitCode(err), err)
	}
	var out bytes.Buffer
	if err := Main(ctx, []string{"catalog", "list", "-catalog", "file://" + dir}, &out); err != nil || !strings.Contains(out.String(), "no tables in catalog file://"+dir) {
		t.Errorf("catalog list of an empty catalog: %v, %q", err, out.String())
	}
	err = Main(ctx, []string{"catalog", "show", "a.b", "-catalog", dir}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "catalog file://"+dir) {
		t.Errorf("catalog show of a missing table does not say where it looked: %v", err)
	}
}

// show and runs only read run history: they work where there are no
// workflow files (this package's folder has no workflows/), reading what
// the runs recorded.
func TestShowAndRunsWithoutWorkflowFiles(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := testenv.RedisDB(t)
	redisOpt, err := config.ParseRedisURL(url)
	if err != nil {
		t.Fatal(err)
	}
	wfs, err := config.LoadWorkflows(filepath.Join("..", "..", "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: redisOpt, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Close()
	st, err := orch.Start(ctx, "mobile-user", civil.Window{Start: civil.Date{Year: 2026, Month: 10, Day: 30}, End: civil.Date{Year: 2026, Month: 10, Day: 30}}, redisstore.StartOptions{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("workflows"); !os.IsNotExist(err) {
		t.Fatalf("the test needs a folder without workflows/: %v", err)
	}
	var out bytes.Buffer
	if err := Main(ctx, []string{"runs", "-redis-url", url}, &out); err != nil || !strings.Contains(out.String(), st.Run.ID) {
		t.Errorf("runs without workflow files: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := Main(ctx, []string{"show", "-redis-url", url, st.Run.ID}, &out); err != nil || !strings.Contains(out.String(), "mobile-user-start") {
		t.Errorf("show without workflow files: %v\n%s", err, out.String())
	}
}
