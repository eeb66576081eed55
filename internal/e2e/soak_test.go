package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sluice/internal/testenv"
	"sluice/pipeline/storage"
)

// soakFaults are the faults the chaos soak injects, one per run at a random
// point of it (besides the S3 faults of the proxy, which every run meets).
var soakFaults = []string{"none", "kill-worker", "kill-both-workers", "kill-scheduler", "kill-client", "kill-redis", "fill-temp"}

// soakReport is what the soak measured; SLUICE_SOAK_REPORT names a file to
// write it to (JSON).
type soakReport struct {
	Runs        int                `json:"runs"`
	Faults      map[string]int     `json:"faults"`
	Seconds     map[string]float64 `json:"run_seconds_by_fault"` // mean run duration
	RowsChecked int64              `json:"rows_checked"`
	// TempLimitStops counts fill-temp faults that stopped a task.
	TempLimitStops int `json:"temp_limit_stops"`
	// Commits and MaxVisibilityWindow: the partition commits the workers
	// logged and the longest time one let a reader see both builds
	// (Commit.Window), crashes aside.
	Commits             int     `json:"commits"`
	MaxVisibilityWindow string  `json:"max_visibility_window"`
	MeanVisibilityMs    float64 `json:"mean_visibility_window_ms"`
	// OrphanWarnings counts the scheduler's sweeps that reported tasks
	// whose worker died (sluice_orphaned_tasks).
	OrphanWarnings int      `json:"orphan_warnings"`
	S3Cuts         int      `json:"s3_cuts"`
	S3Fails        int      `json:"s3_503s"`
	Lost           int      `json:"rows_lost_or_doubled_runs"`
	Leftovers      []string `json:"leftovers"`
}

// TestChaosSoak runs the workflow back to back (SLUICE_SOAK_RUNS times, 3
// by default; scripts/chaos-soak.sh runs many) while killing workers, the
// scheduler, the waiting client and Redis (with AOF) at a random phase of
// each run, filling a worker's temporary space past its -temp-limit, and
// cutting and throttling S3 reads through the fault proxy. After every run
// the table must hold exactly the generator's expected rows (and satisfy
// the independent oracle when SLUICE_ORACLE names it); at the end nothing
// may be left behind: no scratch, no staging, no worker temp folders.
func TestChaosSoak(t *testing.T) {
	t.Parallel()
	// In the suite: 3 runs with the faults that cost no lease recovery
	// (a killed worker's task waits 60 to 120 s for asynq's recoverer), so
	// the test stays short; the script asks for every fault.
	runs, faults := 3, []string{"none", "kill-scheduler", "kill-client", "kill-redis", "fill-temp"}
	if v, err := strconv.Atoi(os.Getenv("SLUICE_SOAK_RUNS")); err == nil && v > 0 {
		runs, faults = v, soakFaults
	}
	// SLUICE_SOAK_FAULTS narrows the faults (comma-separated), and
	// SLUICE_SOAK_REPLACE=0 starts a killed worker's replacement only
	// after the run: for measuring recovery by the workers left alive.
	if v := os.Getenv("SLUICE_SOAK_FAULTS"); v != "" {
		faults = strings.Split(v, ",")
	}
	replaceAtOnce := os.Getenv("SLUICE_SOAK_REPLACE") != "0"
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("SLUICE_SOAK_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("chaos soak: %d runs, seed %d", runs, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(runs)*6*time.Minute)
	defer cancel()

	redis := testenv.StartRedisServer(t, testenv.RedisConfig{AOF: true})
	c := newClusterOn(t, redis.URL)
	sum := c.generate(sampleConfig(1500))
	proxy := testenv.StartS3Proxy(t, c.s3, testenv.S3Faults{CutEvery: 9, CutAfter: 2 << 10, MaxCutsPerKey: 2, FailEvery: 31})
	c.env = withEnv(c.env, "SLUICE_S3_ENDPOINT", proxy.Endpoint)
	c.env = append(c.env, "SLUICE_SHARD_BYTES=400000")
	tempDir := t.TempDir()
	const tempLimit = 32 << 20

	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	var allSchedulers []*proc
	startScheduler := func() *proc {
		p := c.start("scheduler", "serve", "-http", addr, "-sweep-every", "1s")
		waitLine(t, ctx, p, "the scheduler to serve", contains("scheduler serving"))
		allSchedulers = append(allSchedulers, p)
		return p
	}
	workerDir := regexp.MustCompile(`temp_dir=(\S+)`)
	var allWorkers []*proc
	startWorker := func() (*proc, string) {
		p := c.start("worker", "-concurrency", "2", "-http", "", "-task-check-interval", "50ms", "-retry-delay", "1s",
			"-run-check-interval", "200ms", "-temp-dir", tempDir, "-temp-limit", strconv.Itoa(tempLimit))
		line := waitLine(t, ctx, p, "a worker to start", contains("worker started"))
		allWorkers = append(allWorkers, p)
		return p, workerDir.FindStringSubmatch(line)[1]
	}
	sched := startScheduler()
	type worker struct {
		p   *proc
		dir string
	}
	workers := make([]worker, 2)
	for i := range workers {
		workers[i].p, workers[i].dir = startWorker()
	}
	kill := func(p *proc) {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}

	rep := soakReport{Faults: map[string]int{}, Seconds: map[string]float64{}}
	for i := range runs {
		fault := faults[rng.IntN(len(faults))]
		phase := []string{"map", "reduce", "encode", "commit"}[rng.IntN(4)]
		args := []string{"start", "-start", window[0], "-end", window[2], "-wait", "-wait-retry", "5m"}
		if i%5 != 4 { // every fifth run has nothing to rebuild
			args = append(args, "-force")
		}
		began := time.Now()
		defer1 := func() {}
		client := c.start("scheduler", args...)
		// The fault strikes when a task of the chosen phase starts (or
		// not at all if the run ends first).
		struck := make(chan string, len(workers))
		for _, w := range workers {
			go func() {
				select {
				case s := <-w.p.out.waitFor(fresh(w.p, contains("task started", "type=transform:"+phase))):
					struck <- s
				case <-client.done:
				case <-w.p.done:
				}
			}()
		}
		select {
		case <-struck:
			switch fault {
			case "kill-worker":
				n := rng.IntN(len(workers))
				kill(workers[n].p)
				if replaceAtOnce {
					workers[n].p, workers[n].dir = startWorker()
				} else {
					defer1 = func() { workers[n].p, workers[n].dir = startWorker() }
				}
			case "kill-both-workers":
				for n := range workers {
					kill(workers[n].p)
				}
				for n := range workers {
					workers[n].p, workers[n].dir = startWorker()
				}
			case "kill-scheduler":
				kill(sched)
				sched = startScheduler()
			case "kill-client":
				kill(client)
				client = c.start("scheduler", args...)
			case "kill-redis":
				redis.Kill()
				redis.Restart()
			case "fill-temp":
				w := workers[rng.IntN(len(workers))]
				filler := filepath.Join(w.dir, "filler")
				if err := os.WriteFile(filler, make([]byte, tempLimit+1), 0o600); err != nil {
					t.Fatal(err)
				}
				// Until a task meets the limit, or the run ends without
				// one (its last tasks were running elsewhere).
				select {
				case <-w.p.out.waitFor(fresh(w.p, contains("temporary space"))):
					rep.TempLimitStops++
				case <-client.done:
				case <-ctx.Done():
				}
				os.Remove(filler)
			}
		case <-client.done:
			fault = "none (run ended first)"
		case <-ctx.Done():
			t.Fatalf("run %d: timed out", i)
		}
		select {
		case <-client.done:
		case <-ctx.Done():
			t.Fatalf("run %d (%s in %s): start -wait did not end", i, fault, phase)
		}
		if !strings.Contains(client.out.String(), "SUCCEEDED, window") {
			t.Fatalf("run %d (%s in %s) did not succeed:\n%s", i, fault, phase, client.out)
		}
		secs := time.Since(began).Seconds()
		defer1()
		rep.Seconds[fault] = (rep.Seconds[fault]*float64(rep.Faults[fault]) + secs) / float64(rep.Faults[fault]+1)
		rep.Faults[fault]++
		rep.Runs++
		failedBefore := t.Failed()
		checkOutput(t, c, sum, window)
		if t.Failed() && !failedBefore {
			rep.Lost++
		}
		for _, d := range window {
			rep.RowsChecked += sum.ExpectedFor(d)
		}
		t.Logf("run %d: %s at the %s phase, %.0f s, table exact: %v", i, fault, phase, secs, !t.Failed())
	}

	// Nothing left behind: the sweep cleans every run's scratch and
	// staging, and workers stopped leave no temp folder.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rep.Leftovers = nil
		for _, loc := range []string{"s3://lake/scratch", "s3://lake/mobile_user"} {
			b := c.bucket(loc)
			_ = b.List(ctx, "", func(oi storage.ObjectInfo) error {
				if loc == "s3://lake/scratch" || strings.HasPrefix(oi.Key, "_staging/") {
					rep.Leftovers = append(rep.Leftovers, loc+"/"+oi.Key)
				}
				return nil
			})
		}
		if len(rep.Leftovers) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond) // the sweep runs every second; nothing to await but its effect
	}
	for _, w := range workers {
		_ = syscall.Kill(w.p.cmd.Process.Pid, syscall.SIGTERM)
		<-w.p.done
	}
	entries, _ := os.ReadDir(tempDir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			rep.Leftovers = append(rep.Leftovers, filepath.Join(tempDir, e.Name()))
		}
	}
	rep.S3Cuts, rep.S3Fails = proxy.Cuts(), proxy.Fails()
	visibility := regexp.MustCompile(`msg="partition committed" .*visibility_window=(\S+)`)
	var longest, total time.Duration
	for _, p := range allWorkers {
		for _, line := range strings.Split(p.out.String(), "\n") {
			if m := visibility.FindStringSubmatch(line); m != nil {
				if d, err := time.ParseDuration(m[1]); err == nil {
					rep.Commits++
					total += d
					longest = max(longest, d)
				}
			}
		}
	}
	rep.MaxVisibilityWindow = longest.String()
	if rep.Commits > 0 {
		rep.MeanVisibilityMs = float64(total.Milliseconds()) / float64(rep.Commits)
	}
	for _, p := range allSchedulers {
		rep.OrphanWarnings += p.out.count(contains("tasks whose worker died"))
	}
	if rep.Faults["kill-both-workers"] > 0 && rep.OrphanWarnings == 0 {
		t.Error("both workers were killed in a run, and the scheduler never reported their orphaned tasks")
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("chaos soak report:\n%s", out)
	if f := os.Getenv("SLUICE_SOAK_REPORT"); f != "" {
		if err := os.WriteFile(f, out, 0o644); err != nil {
			t.Error(err)
		}
	}
	if len(rep.Leftovers) > 0 {
		t.Errorf("left behind: %q", rep.Leftovers)
	}
}

// fresh matches only the lines that match after now: waitFor also looks at
// the lines already seen, in order, so it skips as many as there are.
func fresh(p *proc, match func(string) bool) func(string) bool {
	skip := p.out.count(match)
	return func(s string) bool {
		if !match(s) {
			return false
		}
		if skip > 0 {
			skip--
			return false
		}
		return true
	}
}
