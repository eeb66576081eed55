package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sluice/internal/api"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withEnv returns env with key set to value.
func withEnv(env []string, key, value string) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(e string) bool { return strings.HasPrefix(e, key+"=") })
	return append(out, key+"="+value)
}

// workflowWithInput writes the example workflow with the job's input (only
// the job's: the crawlers still read the right place) set to location, and
// returns the file.
func workflowWithInput(t *testing.T, location string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const line = "input: ${SLUICE_RAW:-./sluice-data/raw}"
	if !strings.Contains(string(raw), line) {
		t.Fatalf("the example workflow's job input is not %q; update this test", line)
	}
	file := filepath.Join(t.TempDir(), "mobile-user.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(string(raw), line, "input: "+location, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// After a good run, the job's input pointed somewhere wrong: a malformed
// location is refused when the processes start, naming the field; a valid
// location that holds nothing (a wrong prefix, an empty bucket) makes the run
// FAIL naming the partitions it would have emptied, and every published
// file stays as it was. -allow-shrink empties them on purpose.
func TestWrongInputLeavesTheTableAlone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t)
	sum := c.generate(sampleConfig(1000))
	w := c.startWorker("worker")
	waitLine(t, ctx, w, "the worker to start", contains("worker started"))
	if out, err := c.runScheduler(ctx, "start", "-start", window[0], "-end", window[2], "-wait"); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	checkOutput(t, c, sum, window)
	before := c.partitionFiles()
	if err := syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-w.done

	// A typo: one slash. Both commands refuse to start.
	good := c.env
	c.env = withEnv(good, "SLUICE_WORKFLOWS", workflowWithInput(t, "s3:/raw"))
	out, err := c.runScheduler(ctx, "start", "-start", window[0], "-force")
	if err == nil || !strings.Contains(out, "job.input") || !strings.Contains(out, `"s3:/raw" is not a location`) {
		t.Errorf("start with input s3:/raw: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "worker"), "-http", "")
	cmd.Env = c.env
	if wout, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(wout), "job.input") {
		t.Errorf("worker with input s3:/raw: %v\n%s", err, wout)
	}

	// A valid location with nothing in it.
	c.env = withEnv(good, "SLUICE_WORKFLOWS", workflowWithInput(t, "s3://lake/no-such-prefix"))
	w2 := c.startWorker("worker")
	waitLine(t, ctx, w2, "the worker to start", contains("worker started"))
	var refused api.Run
	out, err = c.runSchedulerJSON(ctx, &refused, "start", "-start", window[0], "-end", window[2], "-force", "-wait")
	if err == nil || refused.State != "FAILED" {
		t.Fatalf("run on an empty input: %v, run %s\n%s", err, refused.State, out)
	}
	jobErr := stepOf(t, refused, "mobile-user-daily").Error
	for _, want := range append([]string{"refusing to empty them"}, window...) {
		if !strings.Contains(jobErr, want) {
			t.Errorf("the job's error does not say %q: %s", want, jobErr)
		}
	}
	after := c.partitionFiles()
	if len(after) != len(before) {
		t.Errorf("%d published files after the refused run, %d before", len(after), len(before))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Errorf("%s changed", k)
		}
	}
	checkOutput(t, c, sum, window)

	// On purpose.
	var emptied api.Run
	out, err = c.runSchedulerJSON(ctx, &emptied, "start", "-start", window[0], "-end", window[2], "-force", "-allow-shrink", "-wait")
	if err != nil || emptied.State != "SUCCEEDED" {
		t.Fatalf("run with -allow-shrink: %v, run %s\n%s", err, emptied.State, out)
	}
	if left := c.partitionFiles(); len(left) != 0 {
		t.Errorf("-allow-shrink left %d files", len(left))
	}
}
