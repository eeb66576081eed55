package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"sluice/internal/redisstore"
	"sluice/pipeline/civil"
	"sluice/pipeline/workflow"
)

// Filter selects runs of the history.
type Filter struct {
	// Workflow, when set, is the only workflow listed.
	Workflow string
	// State, when set, is the only state listed (RUNNING, SUCCEEDED,
	// FAILED, CANCELLED).
	State string
	// Date, when set, keeps the runs whose window holds it.
	Date civil.Date
}

func (f Filter) keep(r redisstore.Run) bool {
	return (f.State == "" || string(r.State) == f.State) && (f.Date.IsZero() || r.Window.Contains(f.Date))
}

// Page is one page of run history.
type Page struct {
	Runs []Run `json:"runs"`
	// NextCursor, when set, asks for the next (older) page; absent on the
	// last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// runStates are the states a run can be in, for ?state=.
var runStates = []workflow.StepState{workflow.Running, workflow.Succeeded, workflow.Failed, workflow.Cancelled}

// MaxScanned bounds how many runs one page of history reads from Redis:
// a filter that matches few runs returns a short page (or none) with a
// cursor to read on, so no request reads the whole history at once.
const MaxScanned = 2000

// History lists runs newest first across the workflows (or one), after
// cursor (empty: from the newest), at most limit of them.
func (s *Service) History(ctx context.Context, f Filter, cursor string, limit int) (Page, error) {
	names := s.Orch.Workflows()
	if len(names) == 0 && f.Workflow == "" {
		// No workflow files (a reader outside the repository): the
		// workflows Redis has history of.
		var err error
		if names, err = s.Orch.HistoryWorkflows(ctx); err != nil {
			return Page{}, err
		}
	}
	if f.Workflow != "" {
		if _, err := s.Orch.Workflow(f.Workflow); err != nil {
			return Page{}, notFound(err)
		}
		names = []string{f.Workflow}
	}
	if f.State != "" && !validState(f.State) {
		return Page{}, badRequest(fmt.Errorf("state: %q is not one of RUNNING, SUCCEEDED, FAILED, CANCELLED", f.State))
	}
	pos, err := decodeCursor(cursor)
	if err != nil {
		return Page{}, badRequest(err)
	}
	batch := min(limit, 100)
	type source struct {
		name string
		buf  []redisstore.Run
		pos  redisstore.Position // where the next read starts
		more bool
	}
	srcs := make([]*source, len(names))
	for i, n := range names {
		srcs[i] = &source{name: n, pos: pos, more: true}
	}
	fill := func(src *source) error {
		if len(src.buf) > 0 || !src.more {
			return nil
		}
		runs, more, err := s.Orch.RunsBefore(ctx, src.name, src.pos, batch)
		if err != nil {
			return err
		}
		src.buf, src.more = runs, more
		if len(runs) > 0 {
			src.pos = redisstore.PositionOf(runs[len(runs)-1])
		}
		return nil
	}
	out := Page{Runs: []Run{}}
	scanned := 0
	last := pos
	for len(out.Runs) < limit {
		var next *source
		for _, src := range srcs {
			if err := fill(src); err != nil {
				return Page{}, err
			}
			if len(src.buf) > 0 && (next == nil || redisstore.PositionOf(next.buf[0]).After(redisstore.PositionOf(src.buf[0]))) {
				next = src
			}
		}
		if next == nil {
			return out, nil // every workflow's history is read
		}
		if scanned == MaxScanned {
			out.NextCursor = encodeCursor(last)
			return out, nil
		}
		r := next.buf[0]
		next.buf = next.buf[1:]
		scanned++
		last = redisstore.PositionOf(r)
		if f.keep(r) {
			out.Runs = append(out.Runs, RunOf(r, nil, false))
		}
	}
	for _, src := range srcs {
		if len(src.buf) > 0 || src.more {
			out.NextCursor = encodeCursor(last)
			break
		}
	}
	return out, nil
}

func validState(s string) bool {
	for _, st := range runStates {
		if string(st) == s {
			return true
		}
	}
	return false
}

// A cursor is "<created ms>:<run id>" in unpadded base64url: opaque to
// clients, stable across scheduler replicas.
func encodeCursor(p redisstore.Position) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(p.CreatedMS, 10) + ":" + p.ID))
}

var errCursor = errors.New("cursor: not one this API gave (pass next_cursor as it came)")

func decodeCursor(c string) (redisstore.Position, error) {
	if c == "" {
		return redisstore.Position{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return redisstore.Position{}, errCursor
	}
	ms, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return redisstore.Position{}, errCursor
	}
	return redisstore.Position{CreatedMS: n, ID: id}, nil
}
