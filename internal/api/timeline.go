package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"sluice/internal/redisstore"
	"sluice/tasks"
)

// Timeline is every task of a run as its workers recorded it: what the
// run page's Gantt chart draws, and what a replay of the run's schedule
// reads (times RFC 3339, durations in seconds).
type Timeline struct {
	RunID      string     `json:"run_id"`
	StartedAt  time.Time  `json:"run_started_at"`
	EndedAt    *time.Time `json:"run_ended_at,omitempty"`
	RunSeconds float64    `json:"run_seconds"`
	// Tasks are by first start.
	Tasks []TimelineTask `json:"tasks"`
	// Workers are the workers that ran them, sorted.
	Workers []string `json:"workers"`
	// LeftOut counts the tasks the timeline did not keep (past its bound
	// of 10000 a run).
	LeftOut int `json:"left_out"`
}

// TimelineTask is one task of a run: its first attempt's start, its last
// attempt's end, worker and outcome, and every attempt kept.
type TimelineTask struct {
	ID     string `json:"id"`
	Step   string `json:"step"`
	Type   string `json:"type"`
	Phase  string `json:"phase"`  // plan, map, split, reduce, encode, commit, crawl
	Member string `json:"member"` // the shard, "date/slice", "date/fragment" or date; "" for plan, bucket, crawl
	Label  string `json:"label"`
	Queue  string `json:"queue"`
	Worker string `json:"worker"`
	// StartedAt is when its first attempt (kept) started, EndedAt when its
	// last ended (absent while it runs); Seconds is the span between them.
	StartedAt time.Time     `json:"started_at"`
	EndedAt   *time.Time    `json:"ended_at,omitempty"`
	Seconds   float64       `json:"seconds"`
	Attempts  int           `json:"attempts"`
	Outcome   string        `json:"outcome"`
	Error     string        `json:"error,omitempty"`
	History   []TaskAttempt `json:"history"`
	LogLines  int           `json:"log_lines"`
	Links     TaskLinks     `json:"links"`
}

// TaskAttempt is one attempt of a task.
type TaskAttempt struct {
	Attempt   int        `json:"attempt"`
	Worker    string     `json:"worker"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	Seconds   float64    `json:"seconds"`
	Outcome   string     `json:"outcome"`
	Error     string     `json:"error,omitempty"`
}

// TaskLinks point to a task's log and its asynqmon page.
type TaskLinks struct {
	Log      string `json:"log"`
	Asynqmon string `json:"asynqmon"`
}

// taskPart splits a task id into its phase and member: after
// <run>:<step>, "map:00007" is map 00007, "reduce:20261031:00003" reduce
// 2026-10-31/3 (a slice; encode's member is a fragment), "commit:20261031"
// commit 2026-10-31; nothing is a crawl.
func taskPart(runID, step, id string) (phase, member, label string) {
	rest, ok := strings.CutPrefix(id, tasks.IDPart(runID)+":"+tasks.IDPart(step))
	if !ok {
		return "", "", id
	}
	rest = strings.TrimPrefix(rest, ":")
	if rest == "" {
		return "crawl", "", "crawl"
	}
	parts := strings.Split(rest, ":")
	phase = parts[0]
	date := func(s string) string {
		if len(s) == 8 {
			return s[:4] + "-" + s[4:6] + "-" + s[6:]
		}
		return s
	}
	switch {
	case phase == "map" && len(parts) == 2:
		return phase, parts[1], "map " + parts[1]
	case (phase == "reduce" || phase == "encode") && len(parts) == 3:
		n, _ := strconv.Atoi(parts[2])
		return phase, fmt.Sprintf("%s/%d", date(parts[1]), n), fmt.Sprintf("%s %s #%d", phase, date(parts[1]), n)
	case phase == "commit" && len(parts) == 2:
		return phase, date(parts[1]), "commit " + date(parts[1])
	}
	return phase, strings.Join(parts[1:], ":"), strings.Join(parts, " ")
}

func asynqmonURL(queue, id string) string {
	return MonitoringPath + "/queues/" + queue + "/tasks/" + id
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// timelineTask is a task record's API view.
func timelineTask(runID string, rec redisstore.TaskRecord, now time.Time) TimelineTask {
	first, last := rec.First(), rec.Last()
	phase, member, label := taskPart(runID, rec.Step, rec.ID)
	out := TimelineTask{
		ID: rec.ID, Step: rec.Step, Type: rec.Type, Phase: phase, Member: member, Label: label, Queue: rec.Queue,
		Worker: last.Worker, StartedAt: first.Started.UTC(), Attempts: rec.AttemptCount, Outcome: last.Outcome,
		Error: CleanError(last.Error), LogLines: rec.LogLines,
		Links: TaskLinks{Log: "/api/v1/runs/" + runID + "/tasks/" + rec.ID + "/log", Asynqmon: asynqmonURL(rec.Queue, rec.ID)},
	}
	end := now
	if last.Outcome != redisstore.OutcomeRunning && !last.Ended.IsZero() {
		out.EndedAt, end = timePtr(last.Ended), last.Ended
	}
	out.Seconds = roundSeconds(end.Sub(first.Started))
	for _, a := range rec.Attempts {
		ta := TaskAttempt{Attempt: a.N, Worker: a.Worker, StartedAt: a.Started.UTC(), Outcome: a.Outcome, Error: CleanError(a.Error)}
		e := now
		if !a.Ended.IsZero() {
			ta.EndedAt, e = timePtr(a.Ended), a.Ended
		}
		if a.Outcome == redisstore.OutcomeLost {
			e = a.Started
		}
		ta.Seconds = roundSeconds(e.Sub(a.Started))
		out.History = append(out.History, ta)
	}
	return out
}

// Tasks is a run's timeline.
func (s *Service) Tasks(ctx context.Context, runID string) (Timeline, error) {
	run, err := s.Orch.Run(ctx, runID)
	if errors.Is(err, redisstore.ErrNotFound) {
		return Timeline{}, notFound(err)
	}
	if err != nil {
		return Timeline{}, err
	}
	recs, left, err := s.Orch.Timeline().Tasks(ctx, runID)
	if err != nil {
		return Timeline{}, err
	}
	return timelineOf(run, recs, left, s.now()), nil
}

func timelineOf(run redisstore.Run, recs []redisstore.TaskRecord, left int, now time.Time) Timeline {
	out := Timeline{RunID: run.ID, StartedAt: run.Created.UTC(), EndedAt: timePtr(run.Ended), Tasks: []TimelineTask{}, Workers: []string{}, LeftOut: left}
	end := now
	if !run.Ended.IsZero() {
		end = run.Ended
	}
	out.RunSeconds = roundSeconds(end.Sub(run.Created))
	workers := map[string]bool{}
	for _, r := range recs {
		out.Tasks = append(out.Tasks, timelineTask(run.ID, r, now))
		for _, a := range r.Attempts {
			workers[a.Worker] = true
		}
	}
	out.Workers = slices.Sorted(maps.Keys(workers))
	return out
}

// LogLine is one line a task logged.
type LogLine struct {
	Time    time.Time      `json:"time"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Attempt int            `json:"attempt,omitempty"`
	Worker  string         `json:"worker,omitempty"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

// TaskLog is what a task's attempts logged, the newest lines kept.
type TaskLog struct {
	RunID string    `json:"run_id"`
	Task  string    `json:"task"`
	Lines []LogLine `json:"lines"`
	// Logged counts every line its attempts logged; Lines holds the kept
	// ones (an attempt keeps its first 100 and last 400, a task its last
	// 1000).
	Logged int `json:"logged"`
}

// TaskLog reads the log of one task of a run.
func (s *Service) TaskLog(ctx context.Context, runID, taskID string) (TaskLog, error) {
	tl, err := s.Tasks(ctx, runID)
	if err != nil {
		return TaskLog{}, err
	}
	i := slices.IndexFunc(tl.Tasks, func(t TimelineTask) bool { return t.ID == taskID })
	if i < 0 {
		return TaskLog{}, notFound(fmt.Errorf("run %s has no task %q in its timeline", runID, taskID))
	}
	raw, err := s.Orch.Timeline().Log(ctx, runID, taskID)
	if err != nil {
		return TaskLog{}, err
	}
	out := TaskLog{RunID: runID, Task: taskID, Lines: []LogLine{}, Logged: tl.Tasks[i].LogLines}
	for _, l := range raw {
		out.Lines = append(out.Lines, parseLogLine(l))
	}
	return out, nil
}

// parseLogLine reads a line as slog's JSON handler wrote it.
func parseLogLine(raw string) LogLine {
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return LogLine{Level: "INFO", Message: CleanError(raw)}
	}
	l := LogLine{}
	if t, ok := m["time"].(string); ok {
		l.Time, _ = time.Parse(time.RFC3339Nano, t)
	}
	l.Level, _ = m["level"].(string)
	msg, _ := m["msg"].(string)
	l.Message = CleanError(msg)
	if n, ok := m["attempt"].(float64); ok {
		l.Attempt = int(n)
	}
	l.Worker, _ = m["worker"].(string)
	for _, k := range []string{"time", "level", "msg", "attempt", "worker"} {
		delete(m, k)
	}
	for k, v := range m {
		if s, ok := v.(string); ok {
			m[k] = CleanError(s)
		}
	}
	if len(m) > 0 {
		l.Attrs = m
	}
	return l
}

// Text is a log line as a person reads it: time, level, message, then
// key=value pairs, sorted.
func (l LogLine) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-5s %s", l.Time.UTC().Format("15:04:05.000"), l.Level, l.Message)
	for _, k := range slices.Sorted(maps.Keys(l.Attrs)) {
		v := fmt.Sprint(l.Attrs[k])
		if strings.ContainsAny(v, " \"=") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}
