package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"sluice/internal/redisstore"
	"sluice/tasks"
)

// What one task attempt keeps of its log: the first logHead and the last
// logTail lines, each string value cut at logValueBytes. The timeline
// keeps the newest lines of a task over its attempts (redisstore).
const (
	logHead       = 100
	logTail       = 400
	logValueBytes = 2048
)

// doneResult is the result a task that did its work leaves in asynq, so
// that a retry of its run can tell it from one that completed without
// doing anything (its step had ended): see orchestrator.Retry.
var doneResult = []byte(tasks.ResultDone)

// taskState is what the middleware shares with the handler of one task
// attempt: its logger (which tees into the attempt's log) and how a
// handler that returned nil ended.
type taskState struct {
	log              *slog.Logger
	skipped, stopped bool
}

type taskStateKey struct{}

func stateOf(ctx context.Context) *taskState {
	st, _ := ctx.Value(taskStateKey{}).(*taskState)
	return st
}

// logFor is the logger of the task running with ctx: its lines go to the
// worker's log and to the task's log in the timeline. Outside a task, the
// worker's logger.
func (w *Worker) logFor(ctx context.Context) *slog.Logger {
	if st := stateOf(ctx); st != nil {
		return st.log
	}
	return w.log
}

// markSkipped notes that the task had nothing to do (its step had ended).
func markSkipped(ctx context.Context) {
	if st := stateOf(ctx); st != nil {
		st.skipped = true
	}
}

// markStopped notes that the task stopped because its run ended.
func markStopped(ctx context.Context) {
	if st := stateOf(ctx); st != nil {
		st.stopped = true
	}
}

// workerName names this process in the timeline: host and pid (in
// Kubernetes the host name is the pod's).
func workerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// recordTask is the outermost middleware: it records each attempt of a
// run's task in the run's timeline (worker, start, end, outcome) with the
// lines it logged. Timeline writes are advice: a failed one is logged at
// debug level and the task goes on.
func (w *Worker) recordTask(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		ref, derr := tasks.Decode[tasks.StepRef](t)
		id, _ := asynq.GetTaskID(ctx)
		if derr != nil || ref.RunID == "" || id == "" {
			return next.ProcessTask(ctx, t)
		}
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		queue, _ := asynq.GetQueueName(ctx)
		rec := redisstore.TaskRecord{ID: id, Step: ref.Step, Type: t.Type(), Queue: queue}
		n, err := w.timeline.Begin(ctx, ref.RunID, rec, redisstore.Attempt{Worker: w.name, Started: time.Now().UTC()})
		if err != nil {
			w.log.Debug("timeline not recorded", "run", ref.RunID, "task", id, "err", err)
		}
		lines := &attemptLog{}
		jh := slog.NewJSONHandler(lines, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: shortValues}).
			WithAttrs([]slog.Attr{slog.Int("attempt", n), slog.String("worker", w.name)})
		st := &taskState{log: slog.New(slog.NewMultiHandler(w.log.Handler(), jh))}
		ctx = context.WithValue(ctx, taskStateKey{}, st)
		err = next.ProcessTask(ctx, t)
		var outcome string
		switch {
		case err == nil && st.stopped:
			outcome = redisstore.OutcomeStopped
		case err == nil && st.skipped:
			outcome = redisstore.OutcomeSkipped
		case err == nil:
			outcome = redisstore.OutcomeSucceeded
			if rw := t.ResultWriter(); rw != nil {
				if _, werr := rw.Write(doneResult); werr != nil {
					w.log.Debug("task result not recorded", "task", id, "err", werr)
				}
			}
		case errors.Is(ctx.Err(), context.Canceled):
			outcome = redisstore.OutcomeHandedBack
		case errors.Is(err, asynq.SkipRetry) || retried >= maxRetry:
			outcome = redisstore.OutcomeFailed
			w.orch.Metrics().TaskArchived(ref.Workflow, ref.Step, t.Type())
		default:
			outcome = redisstore.OutcomeRetrying
			w.orch.Metrics().TaskRetried(ref.Workflow, ref.Step, t.Type())
		}
		errText := ""
		if err != nil {
			errText = strings.ReplaceAll(err.Error(), ": "+asynq.SkipRetry.Error(), "")
		}
		// The task's context may be done (shutdown, timeout); the record
		// of how it ended is still wanted.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if werr := w.timeline.End(wctx, ref.RunID, id, n, time.Now().UTC(), outcome, errText, lines.lines()); werr != nil {
			w.log.Debug("timeline not recorded", "run", ref.RunID, "task", id, "err", werr)
		}
		return err
	})
}

// shortValues cuts long string values (and errors) of a task's log lines,
// so one huge value cannot fill the task's log.
func shortValues(_ []string, a slog.Attr) slog.Attr {
	var s string
	switch v := a.Value.Any().(type) {
	case string:
		s = v
	case error:
		s = v.Error()
	default:
		return a
	}
	if len(s) > logValueBytes {
		cut := logValueBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return slog.String(a.Key, s)
}

// attemptLog keeps the lines one attempt logged (slog's JSON handler
// writes each record in one Write): the first logHead and the last
// logTail, with a line saying how many were left out between them.
type attemptLog struct {
	mu   sync.Mutex
	head [][]byte
	tail [][]byte // a ring once full
	next int      // where the ring's oldest line is
	left int
}

func (l *attemptLog) Write(p []byte) (int, error) {
	line := bytes.Clone(bytes.TrimRight(p, "\n"))
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case len(l.head) < logHead:
		l.head = append(l.head, line)
	case len(l.tail) < logTail:
		l.tail = append(l.tail, line)
	default:
		l.tail[l.next] = line
		l.next = (l.next + 1) % logTail
		l.left++
	}
	return len(p), nil
}

// lines are the kept lines in order.
func (l *attemptLog) lines() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([][]byte{}, l.head...)
	if l.left > 0 {
		out = append(out, fmt.Appendf(nil, `{"time":%q,"level":"WARN","msg":"%d lines left out here (a task attempt keeps its first %d and last %d lines)"}`,
			time.Now().UTC().Format(time.RFC3339Nano), l.left, logHead, logTail))
	}
	out = append(out, l.tail[l.next:]...)
	return append(out, l.tail[:l.next]...)
}
