package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"sluice/internal/access"
	"sluice/internal/config"
	"sluice/pipeline/civil"
)

// maxBody bounds a request body (413 beyond it).
const maxBody = 64 << 10

// Register adds the API's routes to mux, behind g. The API has a mux of
// its own under /api/, so that a path it serves asked with another method
// answers 405 with Allow, and any other path 404, both as JSON.
func Register(mux *http.ServeMux, s *Service, g *access.Guard) {
	api := http.NewServeMux()
	read := func(pattern string, h http.HandlerFunc) { api.Handle(pattern, g.Read(h)) }
	write := func(pattern string, h http.HandlerFunc) { api.Handle(pattern, g.Write(h)) }
	read("GET /api/v1/runs", s.listRuns)
	read("GET /api/v1/runs/{id}", s.getRun)
	read("GET /api/v1/workflows", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"workflows": s.Workflows(r.Context())})
	})
	// A dry run changes nothing, so reading is enough for it; a start
	// needs the token (checked in startRun).
	read("POST /api/v1/runs", func(w http.ResponseWriter, r *http.Request) { s.startRun(w, r, g) })
	write("POST /api/v1/runs/{id}/cancel", s.cancelRun)
	write("POST /api/v1/runs/{id}/retry", s.retryRun)
	read("GET /api/v1/runs/{id}/tasks", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK)(s.Tasks(r.Context(), r.PathValue("id")))
	})
	read("GET /api/v1/runs/{id}/tasks/{task}/log", s.getTaskLog)
	read("GET /api/v1/workflows/{name}", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK)(s.Workflow(r.Context(), r.PathValue("name")))
	})
	write("POST /api/v1/workflows/{name}/pause", func(w http.ResponseWriter, r *http.Request) {
		var req PauseRequest
		if err := decodeOptionalBody(w, r, &req); err != nil {
			writeError(w, err)
			return
		}
		req.By = Caller(r)
		answer(w, http.StatusOK)(s.Pause(r.Context(), r.PathValue("name"), req))
	})
	write("POST /api/v1/workflows/{name}/resume", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK)(s.Resume(r.Context(), r.PathValue("name"), Caller(r)))
	})
	read("GET /api/v1/tables", func(w http.ResponseWriter, r *http.Request) {
		type table struct {
			Table      string `json:"table"`
			Workflow   string `json:"workflow"`
			Step       string `json:"step"`
			Location   string `json:"location"`
			Partitions string `json:"partitions"`
		}
		out := []table{}
		for _, t := range s.Tables() {
			out = append(out, table{t.ID(), t.Workflow, t.Step, t.Output, "/api/v1/tables/" + t.ID() + "/partitions"})
		}
		writeJSON(w, http.StatusOK, map[string]any{"tables": out})
	})
	read("GET /api/v1/tables/{table}/partitions", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := PartitionsRequest{From: q.Get("from"), To: q.Get("to")}
		switch c := q.Get("check"); c {
		case "":
		case "inputs":
			req.CheckInputs = true
		default:
			writeError(w, badRequest(fmt.Errorf("check: %q is not inputs", c)))
			return
		}
		answer(w, http.StatusOK)(s.Partitions(r.Context(), r.PathValue("table"), req))
	})
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) { noRoute(api, w, r) })
	mux.Handle("/api/", api)
}

// noRoute answers a request no route of mux took: 405 with the methods the
// path takes, or 404.
func noRoute(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/api/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Err: fmt.Errorf("%s %s: this endpoint takes %s", r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	writeError(w, notFound(fmt.Errorf("no such endpoint: %s %s (see docs/API.md)", r.Method, r.URL.Path)))
}

// limitParam reads ?limit= (def when absent), 1 to 1000.
func limitParam(r *http.Request, def int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, badRequest(fmt.Errorf("limit: %q is not a number from 1 to 1000", v))
	}
	return n, nil
}

func (s *Service) listRuns(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 50)
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	f := Filter{Workflow: q.Get("workflow"), State: strings.ToUpper(q.Get("state"))}
	if d := q.Get("date"); d != "" {
		if f.Date, err = civil.Parse(d); err != nil {
			writeError(w, badRequest(fmt.Errorf("date: %w", err)))
			return
		}
	}
	page, err := s.History(r.Context(), f, q.Get("cursor"), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Service) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// decodeBody reads a JSON request body into v: the whole body and nothing
// after the one value, unknown fields refused, at most maxBody bytes (413).
// Its errors name the field and what it wants, in JSON's words.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	// A JSON body only: a browser cannot send one cross-origin without a
	// preflight (a second guard beside the origin check).
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Err: errors.New("the body must be JSON (Content-Type: application/json)")}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return nil
		}
		if _, ok := errors.AsType[*http.MaxBytesError](err); !ok {
			return badRequest(errors.New("body: more after the JSON object; send one object"))
		}
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &Error{Status: http.StatusRequestEntityTooLarge, Err: fmt.Errorf("body: larger than %d KiB", maxBody>>10)}
	}
	return badRequest(fmt.Errorf("body: %s", jsonProblem(err)))
}

// jsonProblem says what is wrong with a body in terms of its JSON, never
// of the Go types it decodes into.
func jsonProblem(err error) string {
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("%s: want %s, got %s", e.Field, jsonKind(e.Type.Kind().String()), e.Value)
	}
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("not valid JSON at byte %d: %s", e.Offset, e.Error())
	}
	if errors.Is(err, io.EOF) {
		return "empty; want a JSON object"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "the JSON ends too soon"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "int", "int64", "float64":
		return "a number"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	}
	return goKind
}

func (s *Service) startRun(w http.ResponseWriter, r *http.Request, g *access.Guard) {
	var req StartRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if !req.DryRun {
		ok := false
		g.Write(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ok = true })).ServeHTTP(w, r)
		if !ok {
			return // refused, answered by the guard
		}
	}
	req.Trigger, req.By = "api", Caller(r)
	res, err := s.Start(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		w.Header().Set("Location", res.Run.Links.Self)
	}
	writeJSON(w, status, res)
}

// answer writes v with status, or err.
func answer(w http.ResponseWriter, status int) func(v any, err error) {
	return func(v any, err error) {
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, status, v)
	}
}

// decodeOptionalBody is decodeBody for endpoints whose body may be left
// out (no Content-Length, or 0).
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decodeBody(w, r, v)
}

func (s *Service) retryRun(w http.ResponseWriter, r *http.Request) {
	var req RetryRequest
	if err := decodeOptionalBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	req.By = Caller(r)
	run, err := s.Retry(r.Context(), r.PathValue("id"), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": run})
}

func (s *Service) getTaskLog(w http.ResponseWriter, r *http.Request) {
	l, err := s.TaskLog(r.Context(), r.PathValue("id"), r.PathValue("task"))
	if err != nil {
		writeError(w, err)
		return
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		writeJSON(w, http.StatusOK, l)
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, line := range l.Lines {
			fmt.Fprintln(w, line.Text())
		}
	default:
		writeError(w, badRequest(fmt.Errorf("format: %q is not json or text", f)))
	}
}

func (s *Service) cancelRun(w http.ResponseWriter, r *http.Request) {
	reason := "cancelled over the API by " + Caller(r)
	run, err := s.Cancel(r.Context(), r.PathValue("id"), reason)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": run})
}

// Caller describes who sent a request, for the run's record: the client's
// address and user agent (never a credential).
func Caller(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) > 60 {
		ua = ua[:60]
	}
	return fmt.Sprintf("%s (%s)", r.RemoteAddr, ua)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers err as {"error": "…"} with its status, and its
// fields.
func writeError(w http.ResponseWriter, err error) {
	body := map[string]any{}
	if e, ok := errors.AsType[*Error](err); ok {
		for k, v := range e.Fields {
			body[k] = v
		}
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
		}
	}
	body["error"] = CleanError(err.Error())
	writeJSON(w, Status(err), body)
}

// CleanError is an error's text as people read it: secrets redacted, and
// without asynq's ": skip retry for the task", which says how a task was
// retried, not what went wrong (step errors recorded before workers
// dropped it still carry it).
func CleanError(msg string) string {
	return config.RedactText(strings.ReplaceAll(msg, ": skip retry for the task", ""))
}
