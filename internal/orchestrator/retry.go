package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/redisstore"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// ErrNotResumable is returned by Retry when the failed run cannot be taken
// up where it failed now: a task of it is still running, or asynq no
// longer holds the failed step's tasks.
var ErrNotResumable = errors.New("run cannot be resumed")

// RetryOptions qualify Retry.
type RetryOptions struct {
	By string
	// AllowShrink lets the retried run replace or empty published
	// partitions (the shrink guard), what a retry after the guard refused
	// the run is for when the smaller input is right.
	AllowShrink bool
}

// rerun is one task a retry runs again.
type rerun struct {
	queue, id string
}

// Retry takes a FAILED run up again where it failed: its failed steps
// become RUNNING (the steps after them wait again) and the failed step's
// tasks that did not do their work run again, with their payloads as they
// were: the task that failed (from asynq's archive) and those that
// completed doing nothing because the step had failed (tasks.ResultDone
// tells them apart). A job step so resumes its failed phase: the shards
// already mapped, the files already reduced, the partitions already
// committed are not redone (the barriers hold them).
//
// It refuses (ErrNotResumable) while a task of the run is still running,
// and when asynq no longer holds any task of the failed step to run
// (tasks are kept tasks.DefaultOptions.Retention): start the window again
// then. A window another active run overlaps is refused like a start
// (redisstore.ErrOverlap).
func (o *Orchestrator) Retry(ctx context.Context, id string, opts RetryOptions) (redisstore.Run, error) {
	run, err := o.runs.Get(ctx, id)
	if err != nil {
		return run, err
	}
	wf, err := o.Workflow(run.Workflow)
	if err != nil {
		return run, err
	}
	if run.State != workflow.Failed {
		return run, fmt.Errorf("retry run %s: %w: it is %s", id, redisstore.ErrNotFailed, run.State)
	}
	var failed []string
	for name, rec := range run.Steps {
		if s := wf.Step(name); rec.State == workflow.Failed && s != nil && s.Trigger == nil {
			failed = append(failed, name)
		}
	}
	slices.Sort(failed)
	if err := o.CheckWindow(run.Workflow, run.Window); err != nil {
		return run, fmt.Errorf("retry run %s: %w", id, err)
	}
	todo, waiting, err := o.resumable(ctx, run, failed)
	if err != nil {
		return run, err
	}
	if len(todo) == 0 && waiting == 0 {
		return run, fmt.Errorf("retry run %s: %w: asynq no longer holds the tasks of %s (tasks are kept %s after they end); start the window again",
			id, ErrNotResumable, strings.Join(failed, ", "), o.opts.Retention)
	}
	run, started, err := o.runs.Retry(ctx, wf, id, redisstore.RetryOptions{By: opts.By, AllowShrink: opts.AllowShrink, GuardDays: o.guardDays[run.Workflow]})
	if err != nil {
		return run, err
	}
	o.log.Info("run retried", "run", id, "workflow", run.Workflow, "steps", started, "tasks_again", len(todo), "tasks_waiting", waiting, "by", opts.By, "allow_shrink", run.AllowShrink)
	var errs []error
	for _, t := range todo {
		if err := o.runAgain(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return run, fmt.Errorf("retry run %s: the run is RUNNING again, but some of its tasks could not be enqueued (cancel it, or retry when it fails): %w", id, err)
	}
	return run, nil
}

// resumable lists the failed steps' tasks to run again, and counts those
// that still wait in a queue (they run by themselves). The candidates are
// the tasks the timeline recorded for the steps and the run's tasks in
// asynq's archive.
func (o *Orchestrator) resumable(ctx context.Context, run redisstore.Run, steps []string) ([]rerun, int, error) {
	ofSteps := func(taskID string) bool {
		for _, s := range steps {
			if strings.HasPrefix(taskID, tasks.IDPart(run.ID)+":"+tasks.IDPart(s)+":") || taskID == tasks.CrawlRunID(tasks.StepRef{RunID: run.ID, Step: s}) {
				return true
			}
		}
		return false
	}
	cands := map[rerun]bool{}
	recs, _, err := o.timeline.Tasks(ctx, run.ID)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range recs {
		if ofSteps(r.ID) {
			cands[rerun{r.Queue, r.ID}] = true
		}
	}
	for _, queue := range []string{tasks.QueueCrawl, tasks.QueueTransform} {
		active, err := o.inspector.ListActiveTasks(queue, asynq.PageSize(1000))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			return nil, 0, fmt.Errorf("list running tasks of %s: %w", queue, err)
		}
		for _, ti := range active {
			if tasks.OfRun(ti.ID, run.ID) {
				return nil, 0, fmt.Errorf("retry run %s: %w: its task %s is still running; retry when it has ended", run.ID, ErrNotResumable, ti.ID)
			}
		}
		for page := 1; ; page++ {
			infos, err := o.inspector.ListArchivedTasks(queue, asynq.Page(page), asynq.PageSize(500))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break
			}
			if err != nil {
				return nil, 0, fmt.Errorf("list archived tasks of %s: %w", queue, err)
			}
			for _, ti := range infos {
				if ofSteps(ti.ID) {
					cands[rerun{queue, ti.ID}] = true
				}
			}
			if len(infos) < 500 {
				break
			}
		}
	}
	var todo []rerun
	waiting := 0
	for c := range cands {
		ti, err := o.inspector.GetTaskInfo(c.queue, c.id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue // no longer kept
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read task %s: %w", c.id, err)
		}
		switch {
		case ti.State == asynq.TaskStateActive:
			return nil, 0, fmt.Errorf("retry run %s: %w: its task %s is still running; retry when it has ended", run.ID, ErrNotResumable, c.id)
		case ti.State == asynq.TaskStateArchived, ti.State == asynq.TaskStateCompleted && string(ti.Result) != tasks.ResultDone:
			todo = append(todo, c)
		case ti.State == asynq.TaskStatePending, ti.State == asynq.TaskStateScheduled, ti.State == asynq.TaskStateRetry:
			waiting++
		}
	}
	slices.SortFunc(todo, func(a, b rerun) int { return strings.Compare(a.id, b.id) })
	return todo, waiting, nil
}

// runAgain puts a task of a retried run back on its queue: an archived one
// as it is, one that completed without doing its work as a new task with
// its payload. A task that started meanwhile (it was pending when the
// retry looked) is waited for, then judged again.
func (o *Orchestrator) runAgain(ctx context.Context, t rerun) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ti, err := o.inspector.GetTaskInfo(t.queue, t.id)
		if errors.Is(err, asynq.ErrTaskNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read task %s: %w", t.id, err)
		}
		switch {
		case ti.State == asynq.TaskStateArchived:
			if err := o.inspector.RunTask(t.queue, t.id); err != nil {
				return fmt.Errorf("run task %s again: %w", t.id, err)
			}
			return nil
		case ti.State == asynq.TaskStateCompleted && string(ti.Result) != tasks.ResultDone:
			if err := o.inspector.DeleteTask(t.queue, t.id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
				return fmt.Errorf("run task %s again: %w", t.id, err)
			}
			_, err := tasks.Enqueue(ctx, o.client, tasks.Reissue(ti.Type, ti.Payload, t.queue, t.id, o.opts))
			return err
		case ti.State != asynq.TaskStateActive:
			return nil // waiting to run, or done
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("task %s has been running for over 30 s since the retry; if it completes without doing its work, retry the run again when it fails", t.id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
