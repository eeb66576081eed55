package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"

	"sluice/internal/access"
	"sluice/internal/testenv"
	"sluice/pipeline/storage"
	"sluice/tasks"
)

// browser is a headless Chromium for a test, and where its screenshots go
// (the test's artifact folder: go test -artifacts -outputdir DIR keeps
// them; and SLUICE_SCREENSHOTS when it names a folder).
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dirs []string
}

func newBrowser(t *testing.T, ctx context.Context, base string) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if bin, err = exec.LookPath("chromium-browser"); err != nil {
			t.Fatal("chromium is not installed (scripts/test.sh installs it)")
		}
	}
	actx, cancelA := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1360, 1000))
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	b := &browser{t: t, ctx: bctx, base: base, dirs: []string{t.ArtifactDir()}}
	if d := os.Getenv("SLUICE_SCREENSHOTS"); d != "" {
		b.dirs = append(b.dirs, d)
	}
	return b
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("chromium: %v", err)
	}
}

func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("chromium: %s: %v", js, err)
	}
	return v
}

// await waits until a JavaScript predicate holds in the page.
func (b *browser) await(what, js string) {
	b.t.Helper()
	// A predicate read while the page navigates may meet no document yet.
	guarded := "(() => { try { return !!(" + js + ") } catch (e) { return false } })()"
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](guarded)); err != nil {
		b.t.Fatalf("chromium: waiting for %s (%s): %v\npage: %.3000s", what, js, err, eval[string](b, `document.body ? document.body.innerText : ""`))
	}
}

// awaitPage waits, across the navigation an action started, until a
// predicate holds in the new page, then sets up the page as open does.
func (b *browser) awaitPage(what, js string) {
	b.t.Helper()
	guarded := "(() => { try { return !!(" + js + ") && document.readyState === 'complete' } catch (e) { return false } })()"
	var err error
	for range 100 {
		// The old document's context goes away mid-poll: poll again in
		// the new one.
		if _, err = chromedp.Run(b.ctx, chromedp.Poll[bool](guarded)); err == nil {
			b.hooks()
			return
		}
		if b.ctx.Err() != nil {
			break
		}
	}
	b.t.Fatalf("chromium: waiting for %s (%s): %v", what, js, err)
}

// hooks answers confirmations yes (keeping them in window.confirmed) and
// counts the page's htmx swaps (window.settled).
func (b *browser) hooks() {
	b.t.Helper()
	eval[bool](b, `window.confirmed = []; window.confirm = (m) => { window.confirmed.push(m); return true };
		window.settled = 0; document.body.addEventListener("htmx:afterSettle", () => window.settled++); true`)
}

// open goes to a console page and waits for it; confirmations are
// answered yes (and kept in window.confirmed), and the page counts its
// htmx swaps (window.settled).
func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitReady("main"))
	b.hooks()
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("chromium: text of %s: %v", sel, err)
	}
	return s
}

// shot keeps a screenshot of the page.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("chromium: screenshot: %v", err)
	}
	for _, d := range b.dirs {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			b.t.Error(err)
		}
	}
}

// The console as an operator uses it, in headless Chromium against a real
// scheduler, two worker processes, Redis (with AOF, killed and restarted
// once) and S3: find why a run failed in its timeline and read the failing
// task's log, retry it from the failed phase, pause and resume the
// schedule, filter the history, see the table's holes and reprocess picked
// dates with a dry run first; and each defect of issue 19 that shows in a
// browser: errors reach the page (a refused start, a bad dry run, Redis
// down), task links name the tasks that ran, the quarantine folder is not
// #ZgotmplZ, open panels stay open across refreshes, an unknown run has a
// real page, and a signed-out cookie signs nothing in.
func TestConsoleOperatorTour(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	rs := testenv.StartRedisServer(t, testenv.RedisConfig{AOF: true})
	c := newClusterOn(t, rs.URL)
	c.generate(sampleConfig(1500))
	c.env = append(c.env, "SLUICE_SHARD_BYTES=150000", "SLUICE_TARGET_FILE_BYTES=20000", "SLUICE_API_TOKEN="+apiToken)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	sched := c.start("scheduler", "serve", "-http", addr)
	waitLine(t, ctx, sched, "scheduler to serve", contains("scheduler serving"))
	for range 2 {
		w := c.start("worker", "-concurrency", "2", "-http", "", "-task-check-interval", "50ms", "-retry-delay", "1s", "-run-check-interval", "50ms")
		waitLine(t, ctx, w, "a worker to start", contains("worker started"))
	}
	a := apiClient{t, "http://" + addr}
	ok := a.start(false)
	if r := a.await(ctx, ok); r.State != "SUCCEEDED" {
		t.Fatalf("run %s ended %s", ok, r.State)
	}
	// The iOS logs are rewritten empty: the shrink guard fails the next
	// run in its split phase. (Deleted, they would be refused in the
	// plan by the vanished-input guard: guard_test.go.)
	raw := c.bucket("s3://raw")
	var emptied []string
	if err := raw.List(ctx, "segment-logs/ios/", func(oi storage.ObjectInfo) error { emptied = append(emptied, oi.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, k := range emptied {
		var empty bytes.Buffer
		gzip.NewWriter(&empty).Close()
		if err := raw.Put(ctx, k, &empty); err != nil {
			t.Fatal(err)
		}
	}
	failed := a.start(true)
	if r := a.await(ctx, failed); r.State != "FAILED" {
		t.Fatalf("run without iOS logs ended %s", r.State)
	}
	c.awaitQuiet(t, ctx, failed)

	b := newBrowser(t, ctx, a.base)
	// Sign in.
	b.open("/console/login")
	b.do(chromedp.SetValue(`input[name=token]`, apiToken), chromedp.Click(`button.primary`))
	b.awaitPage("the signed-in page", `document.querySelector("#sign-out")`)

	// History filtered by state: the failed run only; the duration trend.
	b.open("/console/")
	b.do(chromedp.SetValue(`#filters select[name=state]`, "FAILED"), chromedp.Click("#filter"))
	b.awaitPage("the filtered list", `location.search.includes("state=FAILED") && document.querySelector("#runs")`)
	listed := eval[[]string](b, `Array.from(document.querySelectorAll("#runs tbody tr[data-state]")).map(r => r.dataset.state)`)
	if len(listed) != 1 || listed[0] != "FAILED" || !strings.Contains(b.text("#runs"), failed) {
		t.Errorf("runs filtered by FAILED: %v", listed)
	}
	if n := eval[int](b, `document.querySelectorAll(".trend-chart rect").length`); n != 2 {
		t.Errorf("duration trend: %d bars, want the 2 ended runs", n)
	}
	b.shot("console-history.png")

	// Why it failed: its timeline, and the failing task's log.
	b.open("/console/runs/" + failed)
	b.do(chromedp.WaitVisible("#gantt"))
	bars := eval[int](b, `document.querySelectorAll("#gantt g.bar-task").length`)
	workers := eval[int](b, `document.querySelectorAll("#gantt text.row-label.worker").length`)
	if bars < 5 || workers < 1 {
		t.Errorf("timeline: %d task bars, %d workers", bars, workers)
	}
	eval[bool](b, `document.querySelector('#gantt g.bar-task[data-task$=":split"]').dispatchEvent(new MouseEvent("click", {bubbles: true})); true`)
	b.await("the split task's log", `document.querySelector("#task-log pre.log") !== null`)
	if log := b.text("#task-log"); !strings.Contains(log, "refusing to replace partitions") || !strings.Contains(log, "split") {
		t.Errorf("the failing task's log:\n%s", log)
	}
	b.shot("console-timeline.png")
	// Defect 3: its task links are the tasks that ran, labelled: the
	// failed split task is there and marked, no commit was enqueued.
	links := eval[[]string](b, `Array.from(document.querySelectorAll("#summary-mobile-user-daily a.task-link")).map(a => a.textContent + (a.classList.contains("failed") ? "!" : ""))`)
	joined := strings.Join(links, " ")
	if !strings.Contains(joined, "map 00000") || !strings.Contains(joined, "split!") || strings.Contains(joined, "commit") || strings.Contains(joined, "map map") {
		t.Errorf("task links of the failed job step: %v", links)
	}

	// Defect 5: the quarantine folder is a location to copy, not
	// #ZgotmplZ.
	b.open("/console/runs/" + ok)
	if dir := b.text(".quarantine-dir"); !strings.HasPrefix(dir, "s3://lake/mobile_user/_errors/") {
		t.Errorf("quarantine folder %q", dir)
	}
	if eval[bool](b, `document.documentElement.outerHTML.includes("ZgotmplZ")`) {
		t.Error("the run page holds #ZgotmplZ")
	}

	// Pause the schedule in the console; the metric says so; resume from
	// the command line.
	b.open("/console/")
	b.do(chromedp.SetValue(`#schedules input[name=reason]`, "upstream outage"), chromedp.Click("#pause-mobile-user"))
	b.awaitPage("the paused schedule", `document.querySelector(".paused-note")`)
	if note := b.text(".paused-note"); !strings.Contains(note, "upstream outage") {
		t.Errorf("pause note %q", note)
	}
	if _, m := a.do("GET", "/metrics", "", "", ""); !strings.Contains(m, `sluice_schedule_paused{workflow="mobile-user"} 1`) {
		t.Error("sluice_schedule_paused is not 1 after the pause")
	}
	b.shot("console-paused.png")
	if out, err := c.runScheduler(ctx, "resume", "mobile-user"); err != nil {
		t.Fatalf("scheduler resume: %v\n%s", err, out)
	}
	b.open("/console/")
	if eval[bool](b, `document.querySelector(".paused-note") !== null || document.querySelector("#pause-mobile-user") === null`) {
		t.Error("the console still shows the schedule paused after scheduler resume")
	}

	// A run that stays RUNNING (its crawl queue paused in asynq): its
	// page refreshes itself, and a panel opened stays open (defect 5).
	opt, _ := asynq.ParseRedisURI(c.redis)
	in := asynq.NewInspector(opt)
	defer in.Close()
	if err := in.PauseQueue(tasks.QueueCrawl); err != nil {
		t.Fatal(err)
	}
	code, body := a.do("POST", "/api/v1/runs", apiToken, "application/json", `{"start": "2026-10-20"}`)
	var held struct{ Run struct{ ID string } }
	if err := json.Unmarshal([]byte(body), &held); code != http.StatusCreated || err != nil {
		t.Fatalf("start of the held run: %d %s", code, body)
	}
	b.open("/console/runs/" + held.Run.ID)
	b.do(chromedp.Click(`#summary-segmentlogs-IOS > summary`))
	b.await("two refreshes", `window.settled >= 2`)
	if !eval[bool](b, `document.getElementById("summary-segmentlogs-IOS").open`) {
		t.Error("the panel opened was closed by the page's refresh")
	}

	// Defect 2: errors reach the page. Redis killed: the next refresh
	// says so; back, the next refresh clears it.
	rs.Kill()
	b.await("the refresh's error", `document.querySelector("#flash .message.error") !== null`)
	if msg := b.text("#flash"); !strings.Contains(strings.ToLower(msg), "redis") {
		t.Errorf("error bar with Redis down: %q", msg)
	}
	b.shot("console-redis-down.png")
	rs.Restart()
	b.await("the error bar to clear", `document.querySelector("#flash .message") === null`)
	// A start refused (within a day of the held run: 409) and a dry run
	// past tomorrow (400) answer in the bar.
	b.open("/console/")
	b.do(chromedp.SetValue(`#start-form input[name=start]`, "2026-10-21"), chromedp.Click("#start"))
	b.await("the refused start's message", `document.querySelector("#flash .message.error") !== null`)
	if msg := b.text("#flash"); !strings.Contains(msg, held.Run.ID) || !strings.Contains(msg, "409") {
		t.Errorf("refused start: %q", msg)
	}
	b.shot("console-error.png")
	eval[bool](b, `document.querySelector('#start-form input[name=start]').value = "2062-03-01"; true`)
	b.do(chromedp.Click("#dry-run"))
	b.await("the refused dry run's message", `document.querySelector("#flash").innerText.includes("reaches past")`)
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector("#dry-run-answer") === null`)); err != nil {
		t.Error(err)
	}
	if code, body := a.do("POST", "/api/v1/runs/"+held.Run.ID+"/cancel", apiToken, "", ""); code != http.StatusOK {
		t.Fatalf("cancel of the held run: %d %s", code, body)
	}
	if err := in.UnpauseQueue(tasks.QueueCrawl); err != nil {
		t.Fatal(err)
	}

	// Retry the failed run from its failed phase, letting it shrink.
	b.open("/console/runs/" + failed)
	b.do(chromedp.Click(`#retry-form input[name=allow_shrink]`), chromedp.Click("#retry"))
	// The console sends the browser to the run's page once it is retried.
	testenv.Eventually(ctx, t, "the retry taking the run up", func() error {
		if a.run(failed).State == "FAILED" {
			// Read without failing the test: the page may be navigating
			// to the run's page, and then there is no document to read.
			flash, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(() => { const e = document.querySelector("#flash"); return e ? e.innerText : "" })()`))
			return fmt.Errorf("still FAILED; the page says %q (%v)", flash, err)
		}
		return nil
	})
	if r := a.await(ctx, failed); r.State != "SUCCEEDED" {
		t.Fatalf("retried run ended %s", r.State)
	}
	c.awaitQuiet(t, ctx, failed)
	_, tl := a.do("GET", "/api/v1/runs/"+failed+"/tasks", "", "", "")
	var timeline struct {
		Tasks []struct {
			Phase    string
			Attempts int
		}
	}
	if err := json.Unmarshal([]byte(tl), &timeline); err != nil {
		t.Fatal(err)
	}
	for _, task := range timeline.Tasks {
		if want := map[string]int{"plan": 1, "map": 1, "split": 2}[task.Phase]; want != 0 && task.Attempts != want {
			t.Errorf("after the retry, a %s task has %d attempts, want %d", task.Phase, task.Attempts, want)
		}
	}

	// The table: its holes, and two dates reprocessed with a dry run
	// first.
	b.open("/console/tables/segmentlogs.mobile?from=2026-10-01&to=2026-11-30")
	states := eval[map[string]string](b, `Object.fromEntries(Array.from(document.querySelectorAll("#grid td.cell input")).map(i => [i.value, i.closest("td").className]))`)
	for _, d := range window {
		if !strings.Contains(states[d], "published") {
			t.Errorf("cell %s: %q, want published", d, states[d])
		}
	}
	if !strings.Contains(states["2026-10-29"], "missing") {
		t.Errorf("cell 2026-10-29: %q, want missing (a hole)", states["2026-10-29"])
	}
	b.do(chromedp.Click(`#grid input[value="2026-10-30"]`), chromedp.Click(`#grid input[value="2026-10-31"]`), chromedp.Click("#reprocess-dry-run"), chromedp.WaitVisible("#dry-run-answer"))
	if n := eval[int](b, `document.querySelectorAll("#dry-run-answer tr.partition").length`); n != 2 {
		t.Errorf("dry run of the picked dates: %d partitions", n)
	}
	b.shot("console-table.png")
	newest := func() string {
		_, body := a.do("GET", "/api/v1/runs?limit=1", "", "", "")
		var p struct{ Runs []struct{ ID string } }
		if err := json.Unmarshal([]byte(body), &p); err != nil || len(p.Runs) == 0 {
			t.Fatalf("runs: %v %s", err, body)
		}
		return p.Runs[0].ID
	}
	before := newest()
	b.do(chromedp.Click("#start-this"))
	var reprocess string
	testenv.Eventually(ctx, t, "a run started by the table page", func() error {
		if reprocess = newest(); reprocess == before {
			return fmt.Errorf("the newest run is still %s", before)
		}
		return nil
	})
	if r := a.await(ctx, reprocess); r.State != "SUCCEEDED" || !strings.Contains(reprocess, "20261030..20261031") {
		t.Errorf("reprocessing run %s ended %s", reprocess, r.State)
	}
	b.open("/console/runs/" + failed)
	b.do(chromedp.WaitVisible("#gantt"))
	b.shot("console-run-timeline.png")

	// Defect 5: an unknown run's page is a page.
	b.open("/console/runs/no-such-run")
	if h := b.text("main h1"); h != "Not Found" || eval[int](b, "document.styleSheets.length") == 0 {
		t.Errorf("unknown run page: %q", h)
	}
	b.shot("console-404.png")

	// Defect 4: signing out ends the session; its cookie signs nothing in.
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{a.base}})
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, ck := range cookies.Cookies {
		if ck.Name == access.CookieName {
			session = ck.Value
		}
	}
	if session == "" || strings.Contains(session, apiToken) {
		t.Fatalf("session cookie %q", session)
	}
	pauseWith := func() int {
		code, _ := a.do("POST", "/api/v1/workflows/mobile-user/pause", "", "", "", "Cookie", access.CookieName+"="+session)
		return code
	}
	if code := pauseWith(); code != http.StatusOK {
		t.Fatalf("a write with the session cookie: %d", code)
	}
	b.open("/console/")
	b.do(chromedp.Click("#sign-out"))
	b.awaitPage("the signed-out page", `document.querySelector("#sign-in")`)
	if code := pauseWith(); code != http.StatusUnauthorized {
		t.Errorf("a write with the signed-out cookie: %d, want 401", code)
	}
	t.Logf("screenshots in %s", strings.Join(b.dirs, ", "))
}
