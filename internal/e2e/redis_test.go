package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sluice/internal/api"
	"sluice/internal/testenv"
)

// secret is the password the tests below put in Redis URLs; it must never
// be printed.
const secret = "S3cretPW"

// Both commands, run as an operator would, never print the Redis password:
// not in -h (flag defaults), not in a malformed URL's error, not in an
// error from Redis (refused, wrong password, no answer). Errors at start
// name the setting, and a Redis that accepts but never answers is named
// with its address.
func TestStartupErrorsNeverPrintThePassword(t *testing.T) {
	t.Parallel()
	protected := testenv.StartRedisServer(t, testenv.RedisConfig{Password: "the-right-one"})
	silent := testenv.SilentListener(t)
	refused := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	url := func(addr string) string { return "redis://:" + secret + "@" + addr + "/0" }
	malformed := "redis://:" + secret + "/x@" + refused + "/0" // a '/' in the password: net/url quotes it as the port

	type run struct {
		env  string   // SLUICE_REDIS_URL
		args []string // the command and its arguments
		want string   // in the output
	}
	help := func(r run) bool { return r.args[len(r.args)-1] == "-h" }
	runs := map[string]run{
		"worker -h":                        {url(refused), []string{"worker", "-h"}, "-redis-url"},
		"scheduler start -h":               {url(refused), []string{"scheduler", "start", "-h"}, "-wait-retry"},
		"scheduler serve -h":               {url(refused), []string{"scheduler", "serve", "-h"}, "-redis-url"},
		"scheduler runs -h, URL as a flag": {url(refused), []string{"scheduler", "runs", "-redis-url", url(refused), "-h"}, "-redis-url"},
		"worker, malformed URL":            {malformed, []string{"worker"}, "-redis-url (SLUICE_REDIS_URL): not a URL"},
		"scheduler start, malformed URL":   {malformed, []string{"scheduler", "start", "-start", "2026-10-30"}, "-redis-url (SLUICE_REDIS_URL): not a URL"},
		"scheduler runs, malformed flag":   {"", []string{"scheduler", "runs", "-redis-url", malformed}, "-redis-url (SLUICE_REDIS_URL): not a URL"},
		"worker, refused":                  {url(refused), []string{"worker"}, "redis " + refused + ": "},
		"scheduler serve, wrong password":  {url(protected.Addr), []string{"scheduler", "serve", "-http", "127.0.0.1:0"}, "redis " + protected.Addr + ": WRONGPASS"},
		"worker, no answer":                {url(silent), []string{"worker"}, "redis " + silent + ": no answer within 5s (read timeout)"},
		"scheduler runs, no answer":        {url(silent), []string{"scheduler", "runs"}, "redis " + silent + ": no answer within 5s (read timeout)"},
	}
	for name, r := range runs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, r.args[0]), r.args[1:]...)
			cmd.Env = append(os.Environ(), "SLUICE_WORKFLOWS="+filepath.Join(repoRoot(), "workflows", "mobile-user.yaml"), "SLUICE_REDIS_URL="+r.env)
			out, err := cmd.CombinedOutput()
			if strings.Contains(string(out), secret) {
				t.Errorf("the password is printed:\n%s", out)
			}
			if !strings.Contains(string(out), r.want) {
				t.Errorf("want %q in the output:\n%s", r.want, out)
			}
			if !help(r) && err == nil {
				t.Errorf("exit 0, want a failure")
			}
		})
	}
}

// A workflow run through Redis Sentinel whose master requires a password:
// the password reaches the master (and the sentinels, or their own
// password does), and the run succeeds with the table exact.
func TestSentinelWithAPasswordProtectedMaster(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		sentinelRequires string // the sentinel's requirepass
		query            string // added to the URL
	}{
		"a password on the master only":     {"", ""},
		"the same password on the sentinel": {"Master-PW", ""},
		"a separate sentinel password":      {"Sentinel-PW", "&sentinel_password=Sentinel-PW"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			master := testenv.StartRedisServer(t, testenv.RedisConfig{Password: "Master-PW"})
			sentinel := testenv.StartSentinel(t, master, "mymaster", tc.sentinelRequires)
			c := newClusterOn(t, "redis-sentinel://:Master-PW@"+sentinel+"/mymaster?db=0"+tc.query)
			sum := c.generate(sampleConfig(300))

			// The master refuses a client without its password, naming it.
			noAuth := "redis-sentinel://" + sentinel + "/mymaster?sentinel_password=" + tc.sentinelRequires
			out, err := c.runScheduler(ctx, "runs", "-redis-url", noAuth)
			if err == nil || !strings.Contains(out, "redis master mymaster via sentinel "+sentinel+": NOAUTH") {
				t.Fatalf("without the master's password: %v\n%s", err, out)
			}

			w := c.startWorker("worker")
			waitLine(t, ctx, w, "the worker to start", contains("worker started"))
			var run api.Run
			out, err = c.runSchedulerJSON(ctx, &run, "start", "-workflow", "mobile-user", "-start", window[0], "-end", window[2], "-wait")
			if err != nil || run.State != "SUCCEEDED" {
				t.Fatalf("start -wait: %v, run %s\n%s", err, run.State, out)
			}
			checkOutput(t, c, sum, window)
		})
	}
}

// `scheduler start -wait` rides out a Redis restart (AOF, appendfsync
// always): its reads retry with backoff, the workers carry on, and it exits
// 0 for the run that succeeds. Meanwhile the worker's /readyz answers 503
// while Redis is down and 200 once it is back; /livez answers 200
// throughout.
func TestWaitRidesOutARedisRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	redis := testenv.StartRedisServer(t, testenv.RedisConfig{AOF: true})
	c := newClusterOn(t, redis.URL)
	sum := c.generate(sampleConfig(3000))
	c.env = append(c.env, "SLUICE_SHARD_BYTES=400000")

	probes := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	w := c.start("worker", "-concurrency", "2", "-http", probes, "-task-check-interval", "50ms", "-retry-delay", "1s")
	waitLine(t, ctx, w, "the worker to start", contains("worker started"))
	awaitStatus(t, ctx, "http://"+probes+"/readyz", http.StatusOK)

	wait := c.start("scheduler", "start", "-workflow", "mobile-user", "-start", window[0], "-end", window[2], "-wait", "-wait-retry", "2m")
	waitLine(t, ctx, w, "a map shard to start", contains("task started", "type=transform:map"))
	redis.Kill()
	waitLine(t, ctx, wait, "-wait to retry its read", contains("reading the run failed; retrying"))
	body := awaitStatus(t, ctx, "http://"+probes+"/readyz", http.StatusServiceUnavailable)
	if !strings.Contains(body, "redis "+redis.Addr+": ") {
		t.Errorf("/readyz while Redis is down: %q does not name Redis and its address", body)
	}
	for _, path := range []string{"/livez", "/healthz"} {
		want := map[string]int{"/livez": http.StatusOK, "/healthz": http.StatusServiceUnavailable}[path]
		if code, body := status(t, "http://"+probes+path); code != want {
			t.Errorf("GET %s while Redis is down: %d %s, want %d", path, code, body, want)
		}
	}
	redis.Restart()
	awaitStatus(t, ctx, "http://"+probes+"/readyz", http.StatusOK)

	select {
	case <-wait.done:
	case <-ctx.Done():
		t.Fatal("start -wait did not end")
	}
	if code := wait.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(wait.out.String(), "SUCCEEDED, window 2026-10-30..2026-11-01") {
		t.Fatalf("start -wait exited %d:\n%s", code, wait.out)
	}
	t.Logf("-wait retried %d reads", wait.out.count(contains("reading the run failed; retrying")))
	checkOutput(t, c, sum, window)
}

// status GETs url and returns the status code and body.
func status(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// awaitStatus polls url until it answers with code and returns the body.
func awaitStatus(t *testing.T, ctx context.Context, url string, code int) string {
	t.Helper()
	var body string
	testenv.Eventually(ctx, t, fmt.Sprintf("GET %s answering %d", url, code), func() error {
		var got int
		if got, body = status(t, url); got != code {
			return fmt.Errorf("%d %s", got, body)
		}
		return nil
	})
	return body
}
