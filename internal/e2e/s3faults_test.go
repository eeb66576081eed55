package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"sluice/internal/api"
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

	var run api.Run
	if out, err := c.runSchedulerJSON(ctx, &run, "start", "-start", window[0], "-end", window[2], "-wait"); err != nil || run.State != "SUCCEEDED" {
		t.Fatalf("run through the cutting proxy: %v, run %s\n%s", err, run.State, out)
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

	var run api.Run
	out, err := c.runSchedulerJSON(ctx, &run, "start", "-start", window[0], "-end", window[2], "-wait")
	if err == nil || run.State != "FAILED" {
		t.Fatalf("run on a missing bucket: %v, run %s\n%s", err, run.State, out)
	}
	jobErr := stepOf(t, run, "mobile-user-daily").Error
	for _, want := range []string{"s3://no-such-bucket", "the bucket does not exist", "NoSuchBucket"} {
		if !strings.Contains(jobErr, want) {
			t.Errorf("the job's error does not say %q: %s", want, jobErr)
		}
	}
	runID := run.ID
	info := c.taskInfo(tasks.PlanID(tasks.StepRef{Workflow: "mobile-user", RunID: runID, Step: "mobile-user-daily"}))
	if info.Retried != 0 {
		t.Errorf("plan task retried %d times, want 0 (a missing bucket is permanent)", info.Retried)
	}
	if n := w.out.count(contains("will retry")); n != 0 {
		t.Errorf("%d attempts were retried, want none", n)
	}
}
