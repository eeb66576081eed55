package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sluice/internal/testenv"
)

// rssKiB reads a process's resident set (VmRSS) and its peak (VmHWM), in
// KiB, from /proc.
func rssKiB(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			peak = n
		}
	}
	return rss, peak
}

// percentile of sorted durations.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// Anonymous clients hammer a real scheduler on loopback with reads and dry
// runs (the window of every date, the widest allowed, history pages of
// 1000, the console, a run's timeline, the table page), a bounded number
// of requests within a bounded time, while one user reads a run's page and
// its JSON in turn: the scheduler's memory stays bounded (its peak
// resident set is asserted; before windows and dry runs were bounded, one
// such dry run took it from 74 MB to 3.7 GB) and the user's latencies are
// reported (p50, p99; not asserted: a shared machine's timing is no test).
// SLUICE_LOAD_REQUESTS raises the number of requests (default 600).
func TestLoadAnonymousReadsAndDryRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	total := 600
	if v, err := strconv.Atoi(os.Getenv("SLUICE_LOAD_REQUESTS")); err == nil && v > 0 {
		total = v
	}
	const clients, budget = 16, 90 * time.Second
	c := newCluster(t)
	c.generate(sampleConfig(1500))
	c.env = append(c.env, "SLUICE_SHARD_BYTES=150000", "SLUICE_TARGET_FILE_BYTES=20000", "SLUICE_API_TOKEN="+apiToken)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	sched := c.start("scheduler", "serve", "-http", addr)
	waitLine(t, ctx, sched, "scheduler to serve", contains("scheduler serving"))
	w := c.start("worker", "-concurrency", "2", "-http", "", "-task-check-interval", "50ms")
	waitLine(t, ctx, w, "a worker to start", contains("worker started"))
	a := apiClient{t, "http://" + addr}
	run := a.start(false)
	if r := a.await(ctx, run); r.State != "SUCCEEDED" {
		t.Fatalf("run ended %s", r.State)
	}
	pid := sched.cmd.Process.Pid
	rss0, _ := rssKiB(t, pid)

	type req struct{ method, path, body string }
	mix := []req{
		{"POST", "/api/v1/runs", `{"start": "0001-01-01", "end": "9999-12-31", "dry_run": true}`},
		{"POST", "/api/v1/runs", `{"start": "2026-08-01", "end": "2026-10-31", "dry_run": true}`},
		{"GET", "/api/v1/runs?limit=1000", ""},
		{"GET", "/console/", ""},
		{"GET", "/api/v1/runs/" + run + "/tasks", ""},
		{"GET", "/console/tables/segmentlogs.mobile", ""},
		{"POST", "/console/dry-run", "start=2026-10-30&end=2026-11-01"},
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	send := func(r req) (int, time.Duration, error) {
		hr, _ := http.NewRequestWithContext(ctx, r.method, a.base+r.path, strings.NewReader(r.body))
		if r.method == "POST" {
			ct := "application/json"
			if strings.HasPrefix(r.path, "/console/") {
				ct = "application/x-www-form-urlencoded"
			}
			hr.Header.Set("Content-Type", ct)
		}
		t0 := time.Now()
		resp, err := hc.Do(hr)
		if err != nil {
			return 0, 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(t0), nil
	}

	deadline := time.Now().Add(budget)
	var next, errs atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	codes := map[string]map[int]int{}
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(total) || time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				r := mix[i%int64(len(mix))]
				code, _, err := send(r)
				mu.Lock()
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					k := r.method + " " + strings.SplitN(r.path, "?", 2)[0]
					if r.body != "" && strings.Contains(r.body, "0001") {
						k += " (every date)"
					}
					if codes[k] == nil {
						codes[k] = map[int]int{}
					}
					codes[k][code]++
				}
				mu.Unlock()
			}
		})
	}
	// The user: a run's page and its JSON, in turn, while the load lasts.
	var user []time.Duration
	var peakRSS int64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			path := "/console/runs/" + run
			if i%2 == 1 {
				path = "/api/v1/runs/" + run
			}
			code, d, err := send(req{"GET", path, ""})
			if err != nil || code != http.StatusOK {
				t.Errorf("the user's %s: %d %v", path, code, err)
			} else {
				user = append(user, d)
			}
			if rss, _ := rssKiB(t, pid); rss > peakRSS {
				peakRSS = rss
			}
			continue
		}
		break
	}
	elapsed := time.Until(deadline)
	_, hwm := rssKiB(t, pid)
	slices.Sort(user)
	sent := min(next.Load(), int64(total))
	t.Logf("load: %d requests from %d anonymous clients in %s (budget %s), %d transport errors (first: %v); answers by request: %v",
		sent, clients, (budget - elapsed).Round(time.Millisecond), budget, errs.Load(), firstErr.Load(), codes)
	t.Logf("the user's reads of a run page and its JSON while loaded: %d, p50 %s, p99 %s, max %s",
		len(user), percentile(user, 0.5).Round(time.Microsecond), percentile(user, 0.99).Round(time.Microsecond), user[len(user)-1].Round(time.Microsecond))
	t.Logf("scheduler memory: resident %d MiB before the load, %d MiB at most while it ran (VmHWM %d MiB)", rss0>>10, peakRSS>>10, hwm>>10)
	for k, byCode := range codes {
		for code := range byCode {
			if code >= 500 && code != http.StatusServiceUnavailable {
				t.Errorf("%s answered %d", k, code)
			}
		}
	}
	if every := codes["POST /api/v1/runs (every date)"]; every[http.StatusBadRequest] == 0 || len(every) != 1 {
		t.Errorf("dry runs of every date: %v, want 400 each", every)
	}
	if limit := int64(256 << 10); hwm > limit {
		t.Errorf("the scheduler's resident memory peaked at %d MiB, over %d MiB", hwm>>10, limit>>10)
	}
}
