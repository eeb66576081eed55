package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"sluice/internal/api"
	"sluice/internal/testenv"
	"sluice/pipeline/storage"
	"sluice/tasks"
)

const apiToken = "e2e-api-token-0123456789abcdef"

// apiRun is the part of the API's run answer the test reads.
type apiRun struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Steps []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Tasks []struct {
			ID, Queue, Kind string
		} `json:"tasks"`
	} `json:"steps"`
}

type apiClient struct {
	t    *testing.T
	base string
}

// do sends a request and returns the status and body.
func (a apiClient) do(method, path, token, contentType, body string, header ...string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// start starts a run of the test window over the API and returns its id.
func (a apiClient) start(force bool) string {
	a.t.Helper()
	code, body := a.do("POST", "/api/v1/runs", apiToken, "application/json", fmt.Sprintf(`{"start": %q, "end": %q, "force": %v}`, window[0], window[2], force))
	if code != http.StatusCreated {
		a.t.Fatalf("start: %d %s", code, body)
	}
	var res struct{ Run apiRun }
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Run.ID == "" {
		a.t.Fatalf("start answer %s: %v", body, err)
	}
	return res.Run.ID
}

func (a apiClient) run(id string) apiRun {
	a.t.Helper()
	code, body := a.do("GET", "/api/v1/runs/"+id, "", "", "")
	var r apiRun
	if code != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil {
		a.t.Fatalf("get run %s: %d %s", id, code, body)
	}
	return r
}

// await polls a run until it is no longer RUNNING.
func (a apiClient) await(ctx context.Context, id string) apiRun {
	a.t.Helper()
	var r apiRun
	testenv.Eventually(ctx, a.t, "run "+id+" ended", func() error {
		if r = a.run(id); r.State == "RUNNING" {
			return errors.New("still RUNNING")
		}
		return nil
	})
	return r
}

// hooks is a local webhook receiver.
type hooks struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
}

func newHooks(t *testing.T) *hooks {
	h := &hooks{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		_ = json.NewDecoder(r.Body).Decode(&v)
		h.mu.Lock()
		h.bodies = append(h.bodies, v)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

// await returns the first notice for a run.
func (h *hooks) await(t *testing.T, ctx context.Context, runID string) map[string]any {
	t.Helper()
	var notice map[string]any
	testenv.Eventually(ctx, t, "a webhook notice for run "+runID, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, b := range h.bodies {
			if b["run_id"] == runID {
				notice = b
				return nil
			}
		}
		return fmt.Errorf("%d notices, none for it", len(h.bodies))
	})
	return notice
}

// awaitAny waits for a line matching in any of the processes.
func awaitAny(t *testing.T, ctx context.Context, what string, match func(string) bool, ps ...*proc) string {
	t.Helper()
	ch := make(chan string, len(ps))
	for _, p := range ps {
		go func() {
			select {
			case s := <-p.out.waitFor(match):
				ch <- s
			case <-ctx.Done():
			}
		}()
	}
	select {
	case s := <-ch:
		return s
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
	}
	return ""
}

// awaitQuiet waits until no task of the run is queued or running.
func (c *cluster) awaitQuiet(t *testing.T, ctx context.Context, runID string) {
	t.Helper()
	opt, _ := asynq.ParseRedisURI(c.redis)
	in := asynq.NewInspector(opt)
	defer in.Close()
	testenv.Eventually(ctx, t, "no task of run "+runID+" queued or running", func() error {
		busy := 0
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){in.ListActiveTasks, in.ListPendingTasks, in.ListRetryTasks, in.ListScheduledTasks} {
			infos, _ := list(tasks.QueueTransform, asynq.PageSize(1000))
			for _, ti := range infos {
				if tasks.OfRun(ti.ID, runID) {
					busy++
				}
			}
		}
		if busy > 0 {
			return fmt.Errorf("%d tasks queued or running", busy)
		}
		return nil
	})
}

// awaitScratchGone waits until the sweep has deleted a run's scratch.
func (c *cluster) awaitScratchGone(t *testing.T, ctx context.Context, runID string) {
	t.Helper()
	b := c.bucket("s3://lake/scratch")
	testenv.Eventually(ctx, t, "the scratch of run "+runID+" deleted", func() error {
		n := 0
		_ = b.List(ctx, runID+"/", func(storage.ObjectInfo) error { n++; return nil })
		if n > 0 {
			return fmt.Errorf("%d scratch objects left", n)
		}
		return nil
	})
}

// The run console and API against a real scheduler, Redis, S3 and two
// worker processes: auth refused and accepted, a dry run, a run started
// over the API, asynqmon's task page for a real task and a cross-origin
// POST refused, the console in headless Chromium, a cancel in the map
// phase and one in the reduce phase (the table holds whole builds only),
// a worker finding its run gone after Redis lost its data (and the next
// start rebuilding), and webhook notices of cancelled and failed runs.
func TestConsoleAPIAndCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := newCluster(t)
	sum := c.generate(sampleConfig(1500))
	hk := newHooks(t)
	c.env = append(c.env, "SLUICE_SHARD_BYTES=150000", "SLUICE_TARGET_FILE_BYTES=20000",
		"SLUICE_API_TOKEN="+apiToken, "SLUICE_NOTIFY_URL="+hk.URL, "SLUICE_MONITORING_WRITABLE=true", "SLUICE_SWEEP_EVERY=1s")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	sched := c.start("scheduler", "serve", "-http", addr)
	waitLine(t, ctx, sched, "scheduler to serve", contains("scheduler serving"))
	var workers []*proc
	for range 2 {
		w := c.start("worker", "-concurrency", "2", "-http", "", "-task-check-interval", "50ms", "-retry-delay", "1s", "-run-check-interval", "50ms")
		waitLine(t, ctx, w, "a worker to start", contains("worker started"))
		workers = append(workers, w)
	}
	a := apiClient{t, "http://" + addr}
	body := fmt.Sprintf(`{"start": %q, "end": %q}`, window[0], window[2])

	// Writes need the token; a dry run (a read) does not.
	for _, tok := range []string{"", "wrong-token"} {
		if code, b := a.do("POST", "/api/v1/runs", tok, "application/json", body); code != http.StatusUnauthorized {
			t.Errorf("start with token %q: %d %s, want 401", tok, code, b)
		}
	}
	code, dry := a.do("POST", "/api/v1/runs", "", "application/json", fmt.Sprintf(`{"start": %q, "end": %q, "dry_run": true}`, window[0], window[2]))
	if code != http.StatusOK || strings.Count(dry, `"reason": "never built"`) != 3 || !strings.Contains(dry, `"map_tasks": `) {
		t.Fatalf("dry run: %d %s", code, dry)
	}
	id := a.start(false)
	if r := a.await(ctx, id); r.State != "SUCCEEDED" {
		t.Fatalf("run %s ended %s", id, r.State)
	}
	checkOutput(t, c, sum, window)
	before := c.partitionFiles()

	// asynqmon: the detail route of a real task, and a cross-origin
	// text/plain POST refused even with the token.
	var planID string
	for _, s := range a.run(id).Steps {
		for _, tk := range s.Tasks {
			if tk.Kind == "plan" {
				planID = tk.ID
			}
		}
	}
	if code, b := a.do("GET", "/monitoring/api/queues/transform/tasks/"+planID, "", "", ""); code != http.StatusOK || !strings.Contains(b, planID) {
		t.Errorf("asynqmon task %s: %d %.300s", planID, code, b)
	}
	if code, b := a.do("POST", "/monitoring/api/queues/transform:pause", apiToken, "text/plain", "x", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); code != http.StatusForbidden {
		t.Errorf("cross-origin pause: %d %s, want 403", code, b)
	}
	if code, b := a.do("POST", "/api/v1/runs/"+id+"/cancel", apiToken, "text/plain", "", "Origin", "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-origin cancel: %d %s, want 403", code, b)
	}
	if _, b := a.do("GET", "/monitoring/api/queues/transform", "", "", ""); strings.Contains(b, `"paused": true`) || strings.Contains(b, `"paused":true`) {
		t.Errorf("the queue was paused: %.300s", b)
	}

	browseConsole(t, ctx, a.base, id)

	// Cancel in the map phase: nothing of the run is published, the window
	// is free at once, the scratch is swept.
	cancelIn := func(phase string) string {
		id := a.start(true)
		awaitAny(t, ctx, "a "+phase+" task of "+id, contains("task started", "type=transform:"+phase, "id="+tasks.IDPart(id)+":"), workers...)
		if code, b := a.do("POST", "/api/v1/runs/"+id+"/cancel", apiToken, "", ""); code != http.StatusOK || !strings.Contains(b, `"state": "CANCELLED"`) {
			t.Fatalf("cancel in %s: %d %s", phase, code, b)
		}
		c.awaitQuiet(t, ctx, id)
		c.awaitScratchGone(t, ctx, id)
		return id
	}
	mapped := cancelIn("map")
	if after := c.partitionFiles(); len(after) != len(before) {
		t.Errorf("after a cancel in the map phase: %d files, %d before", len(after), len(before))
	} else {
		for k, v := range before {
			if !bytes.Equal(after[k], v) {
				t.Errorf("%s changed by a run cancelled in the map phase", k)
			}
		}
	}
	if n := hk.await(t, ctx, mapped); n["state"] != "CANCELLED" || !strings.Contains(fmt.Sprint(n["console_url"]), "/console/runs/"+mapped) {
		t.Errorf("notice of the cancelled run: %v", n)
	}
	// Cancel in the reduce phase (the window is free again at once): each
	// partition holds one whole build, old or new, with every row once.
	cancelIn("reduce")
	checkOutput(t, c, sum, window)

	// Redis loses everything mid-run: the worker stops the run's task and
	// says so, the sweep cleans its scratch, the next start rebuilds.
	lost := a.start(true)
	awaitAny(t, ctx, "a map task of the lost run", contains("task started", "type=transform:map", "id="+tasks.IDPart(lost)+":"), workers...)
	opt, _ := redis.ParseURL(c.redis)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	awaitAny(t, ctx, "a worker to find its run gone", contains("run is gone from Redis", "run="+lost), workers...)
	c.awaitScratchGone(t, ctx, lost)
	var rebuilt api.Run
	if out, err := c.runSchedulerJSON(ctx, &rebuilt, "start", "-start", window[0], "-end", window[2], "-wait"); err != nil || rebuilt.State != "SUCCEEDED" {
		t.Fatalf("start after Redis lost the run: %v, run %s\n%s", err, rebuilt.State, out)
	}
	checkOutput(t, c, sum, window)

	// A failed run reaches the webhook with its step and error: the iOS
	// logs are gone, so the vanished-input guard fails the job, naming
	// them.
	raw := c.bucket("s3://raw")
	if err := storage.DeletePrefix(ctx, raw, "segment-logs/ios/"); err != nil {
		t.Fatal(err)
	}
	failed := a.start(true)
	if r := a.await(ctx, failed); r.State != "FAILED" {
		t.Fatalf("run without iOS logs ended %s", r.State)
	}
	if n := hk.await(t, ctx, failed); n["state"] != "FAILED" || n["failed_step"] != "mobile-user-daily" || !strings.Contains(fmt.Sprint(n["error"]), "fewer input objects than their last build") || !strings.Contains(fmt.Sprint(n["error"]), "segment-logs/ios/") {
		t.Errorf("notice of the failed run: %v", n)
	}
}

// browseConsole drives a headless Chromium through the console: the run's
// page shows its step graph with every step's state, and the dry-run
// button answers in the page. Screenshots go to the test's artifact folder
// (go test -artifacts -outputdir DIR keeps them) and, when
// SLUICE_SCREENSHOTS names a folder, there too.
func browseConsole(t *testing.T, ctx context.Context, base, runID string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if bin, err = exec.LookPath("chromium-browser"); err != nil {
			t.Fatal("chromium is not installed (scripts/test.sh installs it)")
		}
	}
	actx, cancelA := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("chromium: %v", err)
		}
	}
	get := func(a chromedp.Action[[]byte]) []byte {
		t.Helper()
		b, err := chromedp.Run(bctx, a)
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		return b
	}
	do(chromedp.Navigate(base+"/console/runs/"+runID), chromedp.WaitVisible("#graph"))
	nodes, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#graph g.node')).map(n => n.dataset.step + '=' + n.dataset.state)`))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	runPNG := get(chromedp.FullScreenshot(100))
	do(chromedp.Navigate(base+"/console/"), chromedp.WaitVisible("#dry-run"),
		chromedp.SetValue(`input[name=start]`, window[0]), chromedp.SetValue(`input[name=end]`, window[2]),
		chromedp.Click("#dry-run"), chromedp.WaitVisible("#dry-run-answer"))
	dryText, err := chromedp.Run(bctx, chromedp.Text("#dry-run-answer"))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dryPNG := get(chromedp.FullScreenshot(100))
	if len(nodes) != 8 {
		t.Errorf("graph nodes %v, want the 8 steps", nodes)
	}
	for _, n := range nodes {
		if !strings.HasSuffix(n, "=SUCCEEDED") {
			t.Errorf("graph node %s, want SUCCEEDED", n)
		}
	}
	if !strings.Contains(dryText, "Dry run") || strings.Count(dryText, "unchanged") < 3 {
		t.Errorf("dry-run answer in the page:\n%s", dryText)
	}
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("SLUICE_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		for name, png := range map[string][]byte{"console-run.png": runPNG, "console-dry-run.png": dryPNG} {
			if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	t.Logf("screenshots in %s", strings.Join(dirs, ", "))
}
