package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// FailArchived marks FAILED every RUNNING step that has a task in asynq's
// archive, i.e. a task that used up its retries. The worker's middleware
// records most final failures itself, but not those it never sees: a task
// whose last attempt was killed (SIGKILL, OOM, a lost node) is archived by
// asynq's recoverer, and one that hit its timeout may have its context
// cancelled before the step is updated. Without this sweep such a run would
// stay RUNNING. A task an operator archived by hand fails its step too: the
// step cannot finish without it. Tasks that failed longer ago than window
// are not examined.
// It returns how many steps it failed.
func (o *Orchestrator) FailArchived(ctx context.Context, window time.Duration) (int, error) {
	failed := 0
	since := time.Now().Add(-window)
	for _, queue := range []string{tasks.QueueCrawl, tasks.QueueTransform} {
		for page := 1; ; page++ {
			infos, err := o.inspector.ListArchivedTasks(queue, asynq.Page(page), asynq.PageSize(500))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break // nothing was ever enqueued there
			}
			if err != nil {
				return failed, fmt.Errorf("list archived tasks of %s: %w", queue, err)
			}
			for _, ti := range infos {
				// A task archived by hand (asynqmon) has no failure time.
				if !ti.LastFailedAt.IsZero() && ti.LastFailedAt.Before(since) {
					continue
				}
				n, err := o.failArchivedTask(ctx, ti)
				if err != nil {
					return failed, err
				}
				failed += n
			}
			if len(infos) < 500 {
				break
			}
		}
	}
	return failed, nil
}

func (o *Orchestrator) failArchivedTask(ctx context.Context, ti *asynq.TaskInfo) (int, error) {
	var ref tasks.StepRef
	if err := json.Unmarshal(ti.Payload, &ref); err != nil || ref.RunID == "" {
		return 0, nil // not one of ours
	}
	run, err := o.runs.Get(ctx, ref.RunID)
	if err != nil || run.Steps[ref.Step].State != workflow.Running {
		return 0, nil // expired run, or the step has already ended
	}
	cause := fmt.Errorf("%s %s archived after %d retries: %s", ti.Type, ti.ID, ti.Retried, ti.LastErr)
	o.log.Error("task exhausted its retries without the worker recording it; failing the step", "run", ref.RunID, "step", ref.Step, "task", ti.ID, "err", ti.LastErr)
	fin, err := o.Finish(ctx, ref, workflow.Failed, nil, cause)
	if err != nil {
		return 0, err
	}
	if fin.Changed {
		return 1, nil
	}
	return 0, nil
}
