// Package console is the run console that `scheduler serve` shows at
// /console/: the runs (filtered by state, workflow and date, page by page,
// with each workflow's duration trend), a page per run with its step graph
// coloured by state, its timeline (a Gantt chart of every task on its
// worker) and each task's log, each step's timing, progress, error and
// summary, the partitions rebuilt and why, the quarantine, links to the
// run's tasks in asynqmon; the schedules and their next fire times, paused
// and resumed; a page per output table with its partitions (a grid that
// shows the holes), its schema's versions, and a dry run and start of the
// dates picked; forms that dry-run, start, cancel and retry runs.
//
// Errors of the forms and of the page's refreshes show in a bar at the
// top of the page (the server retargets them there: htmx does not swap a
// 4xx or 5xx answer by default).
//
// Pages are rendered on the server from templates embedded in the binary
// (html/template escapes every value); htmx (vendored in static/, 0BSD)
// refreshes a running run's page and sends the forms, so the console works
// without a build step and mostly without JavaScript of its own.
package console

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"sluice/internal/access"
	"sluice/internal/api"
	"sluice/internal/config"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the pages.
type Console struct {
	svc   *api.Service
	guard *access.Guard
	log   *slog.Logger
	// outputs maps a job step to its output location, for the
	// quarantine's folder.
	outputs map[string]string
	tmpl    *template.Template
}

// New returns the console over a Service.
func New(svc *api.Service, guard *access.Guard, log *slog.Logger) (*Console, error) {
	c := &Console{svc: svc, guard: guard, log: log, outputs: map[string]string{}}
	for _, name := range svc.Orch.Workflows() {
		wf, _ := svc.Orch.Workflow(name)
		for _, s := range wf.Steps {
			if s.Job != nil {
				c.outputs[name+"/"+s.Name] = s.Job.Output
			}
		}
	}
	funcs := template.FuncMap{
		"stateClass": stateClass,
		"seconds":    fmtSeconds,
		"time":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"ptime": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.UTC().Format("15:04:05")
		},
		"pseconds": func(s *float64) string {
			if s == nil {
				return ""
			}
			return fmtSeconds(*s)
		},
		"percent": func(p *api.Progress) int {
			if p == nil || p.Total == 0 {
				return 0
			}
			return 100 * p.Done / p.Total
		},
		"bytes":      func(n int64) string { return humanize.IBytes(uint64(max(n, 0))) },
		"comma":      func(n int64) string { return humanize.Comma(n) },
		"list":       func(xs ...string) []string { return xs },
		"deref":      func(b *bool) bool { return b != nil && *b },
		"short":      shortID,
		"sortedKeys": func(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) },
		"pretty": func(raw json.RawMessage) string {
			var v any
			if json.Unmarshal(raw, &v) != nil {
				return string(raw)
			}
			b, _ := json.MarshalIndent(v, "", "  ")
			return string(b)
		},
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	c.tmpl = t
	return c, nil
}

// Register adds the console's routes to mux.
func (c *Console) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.HandleFunc("POST /console/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := c.guard.SignOut(w, r); err != nil {
			c.fail(w, r, fmt.Errorf("sign out: %w", err))
			return
		}
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, c.readable(h)) }
	page("GET /console/{$}", c.runsPage)
	page("GET /console/runs/{id}", c.runPage)
	page("GET /console/runs/{id}/tasks/{task}/log", c.taskLog)
	page("POST /console/dry-run", c.dryRun)
	page("GET /console/tables/{table}", c.tablePage)
	page("POST /console/tables/{table}/dry-run", c.tableDryRun)
	mux.Handle("POST /console/runs", c.writable(c.start))
	mux.Handle("POST /console/runs/{id}/cancel", c.writable(c.cancel))
	mux.Handle("POST /console/runs/{id}/retry", c.writable(c.retry))
	mux.Handle("POST /console/workflows/{name}/pause", c.writable(c.pause(false)))
	mux.Handle("POST /console/workflows/{name}/resume", c.writable(c.pause(true)))
	mux.Handle("/console/", c.readable(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, &api.Error{Status: http.StatusNotFound, Err: fmt.Errorf("no such page: %s %s", r.Method, r.URL.Path)})
	}))
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
}

// readable sends a browser that may not read to the sign-in page.
func (c *Console) readable(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.guard.CanRead(r) {
			c.redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.Path))
			return
		}
		h(w, r)
	})
}

// writable answers a request without the token with the reason, as a
// message in the page.
func (c *Console) writable(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.guard.Signed(r) {
			msg := "Sign in with the API token to start, cancel or retry runs and pause schedules (your session may have expired or been signed out)."
			if !c.guard.WritesEnabled() {
				msg = "Starting, cancelling and retrying runs and pausing schedules is disabled: this scheduler has no API token (SLUICE_API_TOKEN or -api-token-file)."
			}
			c.fail(w, r, &api.Error{Status: http.StatusUnauthorized, Err: errors.New(msg)})
			return
		}
		h(w, r)
	})
}

// redirect sends the browser on, also from an htmx request (HX-Redirect).
func (c *Console) redirect(w http.ResponseWriter, r *http.Request, to string) {
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (c *Console) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := c.tmpl.ExecuteTemplate(w, name, data); err != nil {
		c.log.Error("console page failed", "page", name, "err", err)
	}
}

// fail answers an error: to an htmx request, a message the page shows in
// its error bar (#flash: htmx would not swap a 4xx or 5xx into the
// request's own target, and that target may be a part the error must not
// replace); to a browser's navigation, a whole page saying it.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	msg := api.CleanError(err.Error())
	status := api.Status(err)
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Retarget", "#flash")
		w.Header().Set("HX-Reswap", "innerHTML")
		w.WriteHeader(status)
		c.render(w, "message", map[string]any{"Error": msg, "Status": status, "At": time.Now().UTC().Format("15:04:05Z")})
		return
	}
	d := c.base(r, http.StatusText(status))
	d.Error, d.Status = msg, status
	w.WriteHeader(status)
	c.render(w, "error-page", d)
}

type pageData struct {
	Title     string
	Signed    bool
	CanWrite  bool
	Workflows []api.Workflow
	Tables    []tableLink
	Runs      []api.Run
	Active    bool
	Run       *api.Run
	Graph     Graph
	Jobs      []jobView
	Error     string
	Status    int
	Next      string
	Today     string
	// The runs page: its filter, the next page's link, the trends.
	Filter   api.Filter
	Query    string // the filter as a query string, for the refresh
	NextPage string
	Trends   []trend
	// The run page: its timeline.
	Timeline *api.Timeline
	Gantt    Gantt
	// The table page.
	Table *tableView
}

type tableLink struct{ ID, Workflow string }

func (c *Console) base(r *http.Request, title string) pageData {
	d := pageData{Title: title, Signed: c.guard.Signed(r), CanWrite: c.guard.WritesEnabled(), Today: time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)}
	for _, t := range c.svc.Tables() {
		d.Tables = append(d.Tables, tableLink{t.ID(), t.Workflow})
	}
	return d
}

func (c *Console) runsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := api.Filter{Workflow: q.Get("workflow"), State: q.Get("state")}
	if v := q.Get("date"); v != "" {
		d, err := civil.Parse(v)
		if err != nil {
			c.fail(w, r, &api.Error{Status: http.StatusBadRequest, Err: fmt.Errorf("date: %w", err)})
			return
		}
		f.Date = d
	}
	page, err := c.svc.History(r.Context(), f, q.Get("cursor"), 50)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := c.base(r, "Runs")
	d.Runs, d.Workflows, d.Filter = page.Runs, c.svc.Workflows(r.Context()), f
	fq := url.Values{}
	for k, v := range map[string]string{"workflow": f.Workflow, "state": f.State, "date": q.Get("date")} {
		if v != "" {
			fq.Set(k, v)
		}
	}
	if page.NextCursor != "" {
		nq := url.Values{}
		maps.Copy(nq, fq)
		nq.Set("cursor", page.NextCursor)
		d.NextPage = "/console/?" + nq.Encode()
	}
	if q.Get("cursor") == "" {
		// Only the first page refreshes itself (older pages do not change).
		d.Query = fq.Encode()
		for _, run := range page.Runs {
			d.Active = d.Active || run.State == "RUNNING"
		}
	}
	name := "runs"
	if r.Header.Get("HX-Request") == "true" && q.Get("part") == "runs" {
		name = "runs-table"
	} else if d.Trends, err = c.trends(r.Context(), f.Workflow); err != nil {
		c.log.Warn("run duration trends unavailable", "err", err)
	}
	c.render(w, name, d)
}

func (c *Console) runPage(w http.ResponseWriter, r *http.Request) {
	run, tl, err := c.svc.RunAndTimeline(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := c.base(r, "Run "+run.ID)
	d.Run, d.Active, d.Graph = &run, run.State == "RUNNING", layout(run.Steps)
	d.Jobs = c.jobViews(run)
	if len(tl.Tasks) > 0 {
		d.Timeline, d.Gantt = &tl, layoutGantt(tl, time.Now())
	}
	name := "run"
	if r.Header.Get("HX-Request") == "true" && r.URL.Query().Get("part") == "run" {
		name = "run-body"
	}
	c.render(w, name, d)
}

// taskLog is the log of one task of a run, for the run page.
func (c *Console) taskLog(w http.ResponseWriter, r *http.Request) {
	l, err := c.svc.TaskLog(r.Context(), r.PathValue("id"), r.PathValue("task"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	tl, err := c.svc.Tasks(r.Context(), l.RunID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var task api.TimelineTask
	for _, t := range tl.Tasks {
		if t.ID == l.Task {
			task = t
		}
	}
	c.render(w, "task-log", map[string]any{"Log": l, "Task": task})
}

func (c *Console) retry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := c.svc.Retry(r.Context(), id, api.RetryRequest{AllowShrink: r.FormValue("allow_shrink") != "", By: "console " + api.Caller(r)}); err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, "/console/runs/"+id)
}

func (c *Console) pause(resume bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var err error
		if resume {
			_, err = c.svc.Resume(r.Context(), name, "console "+api.Caller(r))
		} else {
			_, err = c.svc.Pause(r.Context(), name, api.PauseRequest{Reason: r.FormValue("reason"), By: "console " + api.Caller(r)})
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		c.redirect(w, r, "/console/")
	}
}

// jobView is what the run page shows of a job step's summary.
type jobView struct {
	Step          string
	Partitions    []partitionView
	Skipped       []string
	Quarantined   map[string]int64
	QuarantineDir string
	Balanced      bool
	Reconcile     string
	RowsWritten   int64
	// Iceberg is the snapshot the step committed, for an Iceberg table.
	Iceberg *job.IcebergSummary
}

type partitionView struct {
	Date   string
	Reason string
	Rows   int64
	Files  int
}

func (c *Console) jobViews(run api.Run) []jobView {
	var out []jobView
	for _, s := range run.Steps {
		if s.Kind != "job" || len(s.Summary) == 0 {
			continue
		}
		var sum job.Summary
		if json.Unmarshal(s.Summary, &sum) != nil {
			continue
		}
		v := jobView{Step: s.Name, Skipped: sum.Skipped, Quarantined: sum.Quarantined, Balanced: sum.Balanced, Reconcile: sum.Reconciliation, RowsWritten: sum.RowsWritten, Iceberg: sum.Iceberg}
		for _, d := range slices.Sorted(maps.Keys(sum.Rebuilt)) {
			v.Partitions = append(v.Partitions, partitionView{Date: d, Reason: sum.Rebuilt[d], Rows: sum.Partitions[d], Files: sum.Files[d]})
		}
		if sum.QuarantineDir != "" {
			v.QuarantineDir = strings.TrimSuffix(c.outputs[run.Workflow+"/"+s.Name], "/") + "/" + sum.QuarantineDir
		}
		out = append(out, v)
	}
	return out
}

// startForm reads the start / dry-run form.
func startForm(r *http.Request) api.StartRequest {
	return api.StartRequest{
		Workflow: r.FormValue("workflow"), Start: r.FormValue("start"), End: r.FormValue("end"),
		Force: r.FormValue("force") != "", AllowShrink: r.FormValue("allow_shrink") != "",
	}
}

func (c *Console) dryRun(w http.ResponseWriter, r *http.Request) {
	req := startForm(r)
	req.DryRun = true
	res, err := c.svc.Start(r.Context(), req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, "dry-run", dryRunView{DryRun: res.DryRun, Signed: c.guard.Signed(r), Req: req, Start: r.FormValue("offer_start") != ""})
}

type dryRunView struct {
	*api.DryRun
	Signed bool
	Req    api.StartRequest
	// Start offers to start the run dry-run (from the table page).
	Start bool
	// Picked are the dates picked on the table page, when the window
	// holds others between them.
	Picked []string
}

// Line is the dry run's one-line account of a step.
func (dryRunView) Line(s job.StepDryRun) string { return api.DryRunLine(s) }

func (c *Console) start(w http.ResponseWriter, r *http.Request) {
	req := startForm(r)
	req.Trigger, req.By = "console", api.Caller(r)
	res, err := c.svc.Start(r.Context(), req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, "/console/runs/"+res.Run.ID)
}

func (c *Console) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := c.svc.Cancel(r.Context(), id, "cancelled in the console by "+api.Caller(r))
	if err != nil && api.Status(err) != http.StatusConflict {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, "/console/runs/"+id)
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	d := c.base(r, "Sign in")
	d.Next = safeNext(r.URL.Query().Get("next"))
	c.render(w, "login", d)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.FormValue("next"))
	if err := c.guard.SignIn(w, r, r.FormValue("token")); err != nil {
		d := c.base(r, "Sign in")
		d.Next, d.Error = next, "That is not the API token."
		switch {
		case !c.guard.WritesEnabled():
			d.Error = "This scheduler has no API token, so there is nothing to sign in with."
		case !errors.Is(err, access.ErrWrongToken):
			d.Error = "Signing in failed: " + config.RedactText(err.Error())
		}
		w.WriteHeader(http.StatusUnauthorized)
		c.render(w, "login", d)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps a redirect target on this server.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") {
		return "/console/"
	}
	return next
}
