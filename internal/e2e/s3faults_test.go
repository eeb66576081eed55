package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"sluice/internal/testenv"
	"sluice/tasks"
)

// Every other download the workers start is cut mid-stream (at most twice
// per object, within the default budget of 4 resumes): each resumes where it
// broke, no task is retried, and the table is exact.
func TestCutDownloadsResume(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t)
	sum := c.generate(sampleConfig(1000))
	proxy := testenv.StartS3Proxy(t, c.s3, testenv.S3Faults{CutEvery: 2, CutAfter: 2 << 10, MaxCutsPerKey: 2})
	c.env = withEnv(c.env, "SLUICE_S3_ENDPOINT", proxy.Endpoint)
	w := c.startWorker("worker")
	waitLine(t, ctx, w, "the worker to start", contains("worker started"))

	out, err := c.runScheduler(ctx, "start", "-start", window[0], "-end", window[2], "-wait")
	if err != nil || !strings.Contains(out, "SUCCEEDED, window 2026-10-30..2026-11-01") {
		t.Fatalf("run through the cutting proxy: %v\n%s", err, out)
	}
	checkOutput(t, c, sum, window)
	resumed := w.out.count(contains("s3 read resumed"))
	rawResumed := w.out.count(contains("s3 read resumed", "location=s3://raw"))
	t.Logf("the proxy cut %d of %d object GETs; the worker resumed %d reads (%d of raw input)", proxy.Cuts(), proxy.Gets(), resumed, rawResumed)
	if proxy.Cuts() == 0 || rawResumed == 0 {
		t.Errorf("%d cuts, %d resumed reads of raw input: the test cut nothing that mattered", proxy.Cuts(), rawResumed)
	}
	if n := w.out.count(contains("will retry")); n != 0 {
		t.Errorf("%d task attempts failed; a cut download must resume, not fail its task", n)
	}
}

// A job whose input bucket does not exist fails in its first attempt, the
// run FAILED with a message that names the bucket, the plan task never
// retried.
func TestMissingBucketFailsAtOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t)
	c.generate(sampleConfig(100)) // the crawlers read the right place
	c.env = withEnv(c.env, "SLUICE_WORKFLOWS", workflowWithInput(t, "s3://no-such-bucket"))
	w := c.startWorker("worker")
	waitLine(t, ctx, w, "the worker to start", contains("worker started"))

	out, err := c.runScheduler(ctx, "start", "-start", window[0], "-end", window[2], "-wait")
	if err == nil || !strings.Contains(out, "FAILED") {
		t.Fatalf("run on a missing bucket: %v\n%s", err, out)
	}
	for _, want := range []string{"s3://no-such-bucket", "the bucket does not exist", "NoSuchBucket"} {
		if !strings.Contains(out, want) {
			t.Errorf("the failed run's output does not say %q:\n%s", want, out)
		}
	}
	runID := field(strings.ReplaceAll(out, "started run ", "run="), "run")
	info := c.taskInfo(tasks.PlanID(tasks.StepRef{Workflow: "mobile-user", RunID: runID, Step: "mobile-user-daily"}))
	if info.Retried != 0 {
		t.Errorf("plan task retried %d times, want 0 (a missing bucket is permanent)", info.Retried)
	}
	if n := w.out.count(contains("will retry")); n != 0 {
		t.Errorf("%d attempts were retried, want none", n)
	}
}
