package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/config"
	"sluice/internal/notify"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/internal/testenv"
	"sluice/pipeline/civil"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var window = civil.Window{Start: civil.Date{Year: 2026, Month: 10, Day: 30}, End: civil.Date{Year: 2026, Month: 11, Day: 1}}

// newOrchestrator is an orchestrator of the example workflow on the Redis
// database at url; two on one url are two scheduler replicas.
func newOrchestrator(t *testing.T, url string) *orchestrator.Orchestrator {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	wfs, err := config.LoadWorkflows(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: opt, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Close() })
	return orch
}

// receiver is a webhook endpoint that answers each request with the next
// status of its script (then 200) and keeps what it was sent.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	requests []request
}

type request struct {
	contentType, userAgent string
	body                   map[string]any
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			t.Errorf("a notice that is not JSON: %v", err)
		}
		r.mu.Lock()
		r.requests = append(r.requests, request{req.Header.Get("Content-Type"), req.Header.Get("User-Agent"), body})
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

// await waits until n requests have arrived and returns them.
func (r *receiver) await(t *testing.T, n int) []request {
	t.Helper()
	testenv.EventuallyWithin(t, 30*time.Second, fmt.Sprintf("%d notices", n), func() error {
		if got := len(r.got()); got < n {
			return fmt.Errorf("%d arrived", got)
		}
		return nil
	})
	return r.got()
}

// logBuffer keeps a notifier's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// run starts a notifier and stops it when the test ends or stop is called
// (stop returns once Run has).
func run(t *testing.T, cfg notify.Config, orch *orchestrator.Orchestrator) (stop func()) {
	t.Helper()
	if cfg.Every == 0 {
		cfg.Every = 10 * time.Millisecond
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	n, err := notify.New(cfg, orch)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// failRun starts a run and fails its first crawler with stepErr.
func failRun(t *testing.T, orch *orchestrator.Orchestrator, stepErr error) redisstore.Run {
	t.Helper()
	ctx := context.Background()
	st, err := orch.Start(ctx, "mobile-user", window, redisstore.StartOptions{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fin, err := orch.Finish(ctx, tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: "segmentlogs-IOS"}, workflow.Failed, nil, stepErr)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Run.State != workflow.Failed {
		t.Fatalf("run %s is %s after its crawler failed", st.Run.ID, fin.Run.State)
	}
	return fin.Run
}

// succeedRun starts a run and succeeds each of its crawler and job steps.
func succeedRun(t *testing.T, orch *orchestrator.Orchestrator) redisstore.Run {
	t.Helper()
	ctx := context.Background()
	st, err := orch.Start(ctx, "mobile-user", window, redisstore.StartOptions{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var fin redisstore.Finished
	for _, step := range []string{"segmentlogs-IOS", "segmentlogs-Android", "mobile-user-daily", "segmentlogs-Mobile"} {
		if fin, err = orch.Finish(ctx, tasks.StepRef{Workflow: "mobile-user", RunID: st.Run.ID, Step: step}, workflow.Succeeded, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if fin.Run.State != workflow.Succeeded {
		t.Fatalf("run %s is %s after every step succeeded", st.Run.ID, fin.Run.State)
	}
	return fin.Run
}

// cancelRun starts a run and cancels it.
func cancelRun(t *testing.T, orch *orchestrator.Orchestrator) redisstore.Run {
	t.Helper()
	ctx := context.Background()
	st, err := orch.Start(ctx, "mobile-user", window, redisstore.StartOptions{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := orch.Cancel(ctx, st.Run.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runIDs are the runs the notices were for, in order of arrival.
func runIDs(got []request) []string {
	var ids []string
	for _, r := range got {
		ids = append(ids, fmt.Sprint(r.body["run_id"]))
	}
	return ids
}

// A notifier's checks run one after the other, and each lists a
// workflow's newest runs. So once the notice of a run that ended after
// another notice arrived is in, every run that ended before that other
// notice has been considered by a check that has finished: a notice not
// sent by then is not sent at all. marker fails such a run and awaits its
// notice, the n-th.
func marker(t *testing.T, orch *orchestrator.Orchestrator, hook *receiver, n int) string {
	t.Helper()
	m := failRun(t, orch, errors.New("marker"))
	hook.await(t, n)
	return m.ID
}

// A failed run's notice is the JSON body the docs describe, with the
// failed step and its error (passwords redacted) and a console link; two
// scheduler replicas send it once.
func TestFailedRunIsNotifiedOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	url := testenv.RedisDB(t)
	orch1, orch2 := newOrchestrator(t, url), newOrchestrator(t, url)
	hook := newReceiver(t)
	cfg := notify.Config{URLs: []string{hook.URL + "/hook"}, ConsoleURL: "http://sluice.example:8080"}

	stop1 := run(t, cfg, orch1)
	first := failRun(t, orch1, errors.New("list s3://raw/: GET https://user:hunter2@s3.example/raw: 403 Forbidden"))
	hook.await(t, 1)
	stop1()

	// The second replica, started after the first run's notice was sent,
	// must not send it again.
	run(t, cfg, orch2)
	second := failRun(t, orch2, errors.New("map shard 3: disk full"))
	hook.await(t, 2)
	last := marker(t, orch2, hook, 3)

	got := hook.got()
	if ids, want := runIDs(got), []string{first.ID, second.ID, last}; !slices.Equal(ids, want) {
		t.Fatalf("notices for runs %v, want %v", ids, want)
	}
	n := got[0]
	if n.contentType != "application/json" || n.userAgent != "sluice-scheduler" {
		t.Errorf("Content-Type %q, User-Agent %q", n.contentType, n.userAgent)
	}
	want := map[string]any{
		"workflow": "mobile-user", "run_id": first.ID, "state": "FAILED", "trigger": "test",
		"window":      map[string]any{"start": "2026-10-30", "end": "2026-11-01"},
		"failed_step": "segmentlogs-IOS",
		"error":       "list s3://raw/: GET https://user:" + config.Redacted + "@s3.example/raw: 403 Forbidden",
		"console_url": "http://sluice.example:8080/console/runs/" + first.ID,
	}
	for k, v := range want {
		if fmt.Sprint(n.body[k]) != fmt.Sprint(v) {
			t.Errorf("notice %s = %v, want %v", k, n.body[k], v)
		}
	}
	for _, k := range []string{"created_at", "ended_at"} {
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(n.body[k])); err != nil {
			t.Errorf("notice %s = %v: %v", k, n.body[k], err)
		}
	}
}

// A succeeded run is notified only with OnSuccess; a cancelled one always
// is.
func TestSucceededRunsOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	for _, onSuccess := range []bool{false, true} {
		t.Run(fmt.Sprintf("OnSuccess=%v", onSuccess), func(t *testing.T) {
			t.Parallel()
			orch := newOrchestrator(t, testenv.RedisDB(t))
			succeeded, cancelled := succeedRun(t, orch), cancelRun(t, orch)
			hook := newReceiver(t)
			run(t, notify.Config{URLs: []string{hook.URL}, OnSuccess: onSuccess}, orch)
			want := []string{cancelled.ID}
			if onSuccess {
				want = []string{succeeded.ID, cancelled.ID}
			}
			hook.await(t, len(want))
			want = append(want, marker(t, orch, hook, len(want)+1))
			got := runIDs(hook.got())
			slices.Sort(got[:len(want)-1]) // one check sends both, in its order
			slices.Sort(want[:len(want)-1])
			if !slices.Equal(got, want) {
				t.Errorf("notices for runs %v, want %v (succeeded %s, cancelled %s)", got, want, succeeded.ID, cancelled.ID)
			}
		})
	}
}

// Slack's incoming webhooks take {"text": …} with their own link syntax.
func TestSlackBody(t *testing.T) {
	t.Parallel()
	n, err := notify.New(notify.Config{Format: notify.FormatSlack}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	if err := json.Unmarshal(n.Body(notify.Notice{
		Workflow: "mobile-user", RunID: "r1", Window: notify.Window{Start: "2026-10-30", End: "2026-11-01"}, State: "FAILED",
		FailedStep: "segmentlogs-IOS", Error: strings.Repeat("x", 600), ConsoleURL: "http://c/console/runs/r1",
	}), &body); err != nil {
		t.Fatal(err)
	}
	want := "Sluice run of *mobile-user* 2026-10-30..2026-11-01 *FAILED* at step `segmentlogs-IOS`: " + strings.Repeat("x", 500) + "…\n<http://c/console/runs/r1|r1>"
	if len(body) != 1 || body["text"] != want {
		t.Errorf("Slack body %q,\nwant {\"text\": %q}", body, want)
	}
}

// A 5xx or 429 answer is retried with backoff until the endpoint takes the
// notice; a 4xx other than 408 and 429 is not retried (no retry changes
// it); either way the log says how many attempts it took and names only
// the endpoint's host, never the URL's path (Slack's holds its secret).
func TestRetriesAndRefusals(t *testing.T) {
	t.Parallel()
	url := testenv.RedisDB(t)
	orch := newOrchestrator(t, url)
	flaky := newReceiver(t, http.StatusServiceUnavailable, http.StatusTooManyRequests)
	refusing := newReceiver(t, http.StatusForbidden, http.StatusForbidden)
	var log logBuffer
	run(t, notify.Config{URLs: []string{flaky.URL + "/services/T0/B0/secret-one", refusing.URL + "/services/T0/B0/secret-two"},
		Log: slog.New(slog.NewTextHandler(&log, nil))}, orch)
	failRun(t, orch, errors.New("boom"))

	testenv.EventuallyWithin(t, 30*time.Second, "both deliveries logged", func() error {
		if s := log.String(); !strings.Contains(s, "run notice sent") || !strings.Contains(s, "run notice not delivered") {
			return fmt.Errorf("log so far:\n%s", s)
		}
		return nil
	})
	if n := len(flaky.got()); n != 3 {
		t.Errorf("the flaky endpoint got %d requests, want 3 (two refusals retried)", n)
	}
	if n := len(refusing.got()); n != 1 {
		t.Errorf("the refusing endpoint got %d requests, want 1 (a 403 is not retried)", n)
	}
	s := log.String()
	for _, want := range []string{"attempts=3", "attempts=1", "403 Forbidden", "to=" + flaky.URL, "to=" + refusing.URL} {
		if !strings.Contains(s, want) {
			t.Errorf("log lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "secret-") {
		t.Errorf("log shows a URL's path:\n%s", s)
	}
}

// Configuration mistakes fail at start, naming the flag, without the
// URL's secret.
func TestBadConfigFailsNamingTheFlag(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  notify.Config
		want string
	}{
		{notify.Config{URLs: []string{"ftp://user:hunter2@hooks.example/x"}}, "-notify-url (SLUICE_NOTIFY_URL)"},
		{notify.Config{URLs: []string{"hooks.example/services/secret"}}, "-notify-url (SLUICE_NOTIFY_URL)"},
		{notify.Config{Format: "teams"}, "-notify-format (SLUICE_NOTIFY_FORMAT)"},
	} {
		_, err := notify.New(c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%+v: the error shows a secret: %v", c.cfg, err)
		}
	}
}
