package e2e

import (
	"context"
	"fmt"
	"sluice/internal/testenv"
	"syscall"
	"testing"
	"time"
)

// The scaling story on one machine: a run starts with one worker; workers
// that join while it runs take its map and reduce tasks (the plan cut the
// map phase for the one worker it saw, at least 16 tasks, so there is work
// for them); one of them is stopped with SIGTERM in the middle of a task
// (what a scale-in does), hands it back, and another worker redoes it; the
// table has every row once.
func TestWorkersJoinAndLeaveDuringARun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t)
	sum := c.generate(sampleConfig(6000))
	// Many small map shards and several files per date, so that both
	// phases have more tasks than workers.
	c.env = append(c.env, "SLUICE_SHARD_BYTES=600000", "SLUICE_TARGET_FILE_BYTES=200000")

	first := c.start("worker 1", "-concurrency", "1", "-http", "", "-task-check-interval", "50ms")
	waitLine(t, ctx, first, "worker 1 to start", contains("worker started"))
	run := c.startRunInBackground(ctx)
	waitLine(t, ctx, first, "the map phase to start on worker 1", contains("task started", "type=transform:map"))

	// Scale up while the map phase runs.
	joined := c.start("worker 2", "-concurrency", "1", "-http", "", "-task-check-interval", "50ms")
	// Worker 3 reads S3 through a proxy that holds its reads of raw
	// input, so its first map task is still running when it is stopped,
	// however fast a map task is.
	holding := testenv.StartS3Proxy(t, c.s3, testenv.S3Faults{HoldPrefix: "raw/"})
	env := c.env
	c.env = withEnv(c.env, "SLUICE_S3_ENDPOINT", holding.Endpoint)
	victim := c.start("worker 3", "-concurrency", "1", "-http", "", "-task-check-interval", "50ms", "-shutdown-timeout", "1ms")
	c.env = env
	waitLine(t, ctx, joined, "worker 2 to take a map task", contains("task started", "type=transform:map"))
	started := waitLine(t, ctx, victim, "worker 3 to take a map task", contains("task started", "type=transform:map"))

	// Scale in: SIGTERM worker 3 while its map task runs (its read of the
	// raw input held).
	taskID := field(started, "id")
	testenv.Eventually(ctx, t, "worker 3's read of raw input to be held", func() error {
		if holding.Held() == 0 {
			return fmt.Errorf("no read held yet")
		}
		return nil
	})
	if err := victim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	if victim.out.count(contains("task done", "id="+taskID, "outcome=ok")) != 0 {
		t.Fatalf("task %s finished before the shutdown timeout; the test did not interrupt it", taskID)
	}
	if code := victim.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("worker 3 exited %d after SIGTERM, want 0", code)
	}

	awaitSuccess(t, ctx, run)
	redone := func(p *proc) bool { return p.out.count(contains("task done", "id="+taskID, "outcome=ok")) == 1 }
	if !redone(first) && !redone(joined) {
		t.Errorf("the handed-back task %s was not redone by worker 1 or 2", taskID)
	}
	if info := c.taskInfo(taskID); info.Retried != 0 {
		t.Errorf("the handed-back task was retried %d times, want 0 (a shutdown hands it back)", info.Retried)
	}
	tasks := func(p *proc, typ string) int { return p.out.count(contains("task done", "type="+typ, "outcome=ok")) }
	for _, p := range []*proc{first, joined} {
		t.Logf("%s: %d map, %d reduce, %d commit tasks", p.name, tasks(p, "transform:map"), tasks(p, "transform:reduce"), tasks(p, "transform:commit"))
	}
	if tasks(joined, "transform:map") == 0 || tasks(joined, "transform:reduce") == 0 {
		t.Errorf("worker 2, which joined mid-run, did %d map and %d reduce tasks; want some of each",
			tasks(joined, "transform:map"), tasks(joined, "transform:reduce"))
	}
	checkOutput(t, c, sum, window)
}
