package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/redisstore"
	"sluice/pipeline/job"
	"sluice/pipeline/storage"
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
	if rec := run.Steps[ref.Step]; !ti.LastFailedAt.IsZero() && ti.LastFailedAt.Before(rec.Started) {
		return 0, nil // a failure from before the step was retried (Retry runs it again)
	}
	cause := fmt.Errorf("%s %s archived after %d retries: %s", ti.Type, ti.ID, ti.Retried, ti.LastErr)
	o.log.Error("task exhausted its retries without the worker recording it; failing the step", "run", ref.RunID, "step", ref.Step, "task", ti.ID, "err", ti.LastErr)
	fin, err := o.Finish(ctx, ref, workflow.Failed, nil, cause)
	if err != nil {
		return 0, err
	}
	if fin.Changed {
		// Its worker did not see it end, so did not count it.
		o.metrics.TaskArchived(ref.Workflow, ref.Step, ti.Type)
	}
	if fin.Changed {
		return 1, nil
	}
	return 0, nil
}

// ScratchOptions say which ended runs' scratch the sweep keeps.
type ScratchOptions struct {
	// KeepFailed keeps the scratch of failed runs for inspection (a
	// lifecycle rule, or a person, removes it); otherwise it is removed
	// once the run can no longer be retried.
	KeepFailed bool
}

// CleanScratch deletes the scratch and staging objects of runs that will
// never use them again: runs that succeeded (the worker that ended the run
// cleans them itself, but it may die before it does), runs that failed
// longer ago than asynq retains their tasks (Retry resumes from those tasks
// and their scratch until then), cancelled runs, and runs whose records are
// gone from Redis (flushed, or a Redis restarted without persistence). It
// needs Config.Open and returns how many runs it cleaned.
func (o *Orchestrator) CleanScratch(ctx context.Context, opts ScratchOptions) (int, error) {
	if o.open == nil {
		return 0, nil
	}
	cleaned := 0
	for _, name := range o.names {
		for _, step := range o.workflows[name].Steps {
			if step.Job == nil {
				continue
			}
			n, err := o.cleanJobScratch(ctx, name, step.Job, opts)
			cleaned += n
			if err != nil {
				return cleaned, fmt.Errorf("step %s: %w", step.Name, err)
			}
		}
	}
	return cleaned, nil
}

func (o *Orchestrator) cleanJobScratch(ctx context.Context, wf string, spec *workflow.JobSpec, opts ScratchOptions) (int, error) {
	scratch, err := o.open(ctx, spec.Scratch)
	if err != nil {
		return 0, err
	}
	ids, err := job.ScratchRuns(ctx, scratch, wf+".")
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	out, err := o.open(ctx, spec.Output)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		state, err := o.runs.State(ctx, id)
		switch {
		case errors.Is(err, redisstore.ErrNotFound):
			o.log.Warn("cleaning the scratch of a run whose records are gone from Redis", "run", id, "scratch", spec.Scratch)
		case err != nil:
			return n, err
		case state == workflow.Cancelled:
			o.log.Info("cleaning the scratch of a cancelled run", "run", id, "scratch", spec.Scratch)
		case state == workflow.Succeeded:
			// The worker that ended the step stopped before its own
			// cleanup (killed, or the storage failed it).
			o.log.Info("cleaning the scratch of a succeeded run", "run", id, "scratch", spec.Scratch)
		case state == workflow.Failed && !opts.KeepFailed:
			run, err := o.runs.Get(ctx, id)
			if err != nil {
				return n, err
			}
			if run.Ended.IsZero() || o.now().Sub(run.Ended) < o.opts.Retention {
				continue // it can still be retried
			}
			o.log.Info("cleaning the scratch of a failed run that can no longer be retried", "run", id, "ended", run.Ended, "scratch", spec.Scratch)
		default:
			continue
		}
		if err := job.CleanRun(ctx, scratch, out, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// RemoveLeftovers removes what interrupted writes left in the jobs' output
// and scratch locations that no listing shows (a folder's temporary files;
// see storage.LeftoverRemover), when last touched more than age ago. It
// returns how many files it removed and their bytes.
func (o *Orchestrator) RemoveLeftovers(ctx context.Context, age time.Duration) (int, int64, error) {
	if o.open == nil {
		return 0, 0, nil
	}
	seen := map[string]bool{}
	total, totalBytes := 0, int64(0)
	cutoff := o.now().Add(-age)
	for _, name := range o.names {
		for _, step := range o.workflows[name].Steps {
			if step.Job == nil {
				continue
			}
			for _, loc := range []string{step.Job.Output, step.Job.Scratch} {
				if seen[loc] {
					continue
				}
				seen[loc] = true
				b, err := o.open(ctx, loc)
				if err != nil {
					return total, totalBytes, err
				}
				lr, ok := b.(storage.LeftoverRemover)
				if !ok {
					continue
				}
				n, size, err := lr.RemoveLeftovers(ctx, "", cutoff)
				total += n
				totalBytes += size
				if n > 0 {
					o.log.Warn("removed the temporary files of interrupted writes", "location", loc, "files", n, "bytes", size, "older_than", age)
				}
				if err != nil {
					return total, totalBytes, err
				}
			}
		}
	}
	return total, totalBytes, nil
}

// OrphanedTasks counts, per queue, the active tasks whose lease has
// expired: their worker died (SIGKILL, OOM, a lost node) or lost Redis.
// asynq's recoverer hands them back to the queue, but only once the lease
// is 30 s past its end and on its own once-a-minute round, so a task can
// sit orphaned for up to about 90 s after its lease lapsed; longer means no
// worker serves the queue. It returns the IDs of a few orphans too.
func (o *Orchestrator) OrphanedTasks(ctx context.Context) (map[string]int, []string, error) {
	counts := map[string]int{}
	var ids []string
	for _, queue := range []string{tasks.QueueCrawl, tasks.QueueTransform} {
		counts[queue] = 0
		for page := 1; ; page++ {
			infos, err := o.inspector.ListActiveTasks(queue, asynq.Page(page), asynq.PageSize(500))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break
			}
			if err != nil {
				return counts, ids, fmt.Errorf("list active tasks of %s: %w", queue, err)
			}
			for _, ti := range infos {
				if ti.IsOrphaned {
					counts[queue]++
					if len(ids) < 10 {
						ids = append(ids, ti.ID)
					}
				}
			}
			if len(infos) < 500 {
				break
			}
		}
	}
	return counts, ids, nil
}
