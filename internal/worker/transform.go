package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"gopkg.in/yaml.v3"

	"sluice/internal/config"
	"sluice/pipeline/bookmark"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// jobStep is a job step's spec and buckets, resolved for one task.
type jobStep struct {
	spec    transform.Spec
	in      storage.Bucket
	out     storage.Bucket
	scratch storage.Bucket
	prefix  string // this run's and step's folder in scratch
	window  transform.Window
	force   bool   // rebuild every partition, bookmarks notwithstanding
	specID  string // identifies the job's configuration for bookmarks
	marks   *bookmark.Store
}

// loadJob resolves the job step a transform task belongs to. ok is false
// when the step is no longer RUNNING: the task has nothing to do.
func (w *Worker) loadJob(ctx context.Context, ref tasks.StepRef) (j *jobStep, ok bool, err error) {
	_, step, run, ok, err := w.activeStep(ctx, ref)
	if err != nil || !ok {
		return nil, false, err
	}
	j, err = w.jobStep(ctx, step, ref.RunID, run.Window)
	if err != nil {
		return nil, false, err
	}
	j.force = run.Force
	return j, true, nil
}

func (w *Worker) jobStep(ctx context.Context, step *workflow.Step, runID string, win workflow.Window) (*jobStep, error) {
	spec, err := config.JobTransform(step.Job)
	if err != nil {
		return nil, fmt.Errorf("step %s: %v: %w", step.Name, err, asynq.SkipRetry)
	}
	j := &jobStep{spec: spec, prefix: runID + "/" + step.Name + "/"}
	if j.in, err = w.bucket(ctx, step.Job.Input); err != nil {
		return nil, err
	}
	if j.out, err = w.bucket(ctx, step.Job.Output); err != nil {
		return nil, err
	}
	if j.scratch, err = w.bucket(ctx, step.Job.Scratch); err != nil {
		return nil, err
	}
	start, _ := transform.ParseDate(win.Start.String())
	end, _ := transform.ParseDate(win.End.String())
	j.window = transform.Window{Start: start, End: end}
	specYAML, _ := yaml.Marshal(&step.Job.Transform)
	j.specID = bookmark.SpecHash(append(specYAML, []byte(step.Job.Input+"\n"+step.Job.Output)...), outputFormatVersion)
	j.marks = bookmark.NewStore(j.out, step.Name)
	return j, nil
}

// outputFormatVersion changes when a Sluice release changes what the job
// writes for the same input, so that bookmarks rebuild every partition.
const outputFormatVersion = "sluice-transform-1"

// planManifest is written last by the plan task: its presence means every
// shard file exists, so a retried plan task reuses the plan instead of
// re-listing (new input arriving meanwhile must not renumber shards that map
// tasks have already processed).
type planManifest struct {
	Shards int      `json:"shards"`
	Bytes  int64    `json:"bytes"`
	Dates  []string `json:"dates"` // partitions to rebuild
	// Rebuild says why each partition of Dates is rebuilt; Skipped are the
	// window's partitions whose input is unchanged since their last build.
	Rebuild map[string]string `json:"rebuild"`
	Skipped []string          `json:"skipped,omitempty"`
}

func (j *jobStep) shardKey(i int) string { return fmt.Sprintf("%splan/shard-%05d.json", j.prefix, i) }

func (w *Worker) handleTransformPlan(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Decode[tasks.TransformPlanPayload](t)
	if err != nil {
		return err
	}
	j, ok, err := w.loadJob(ctx, p.StepRef)
	if err != nil || !ok {
		return err
	}
	var m planManifest
	if err := storage.ReadJSON(ctx, j.scratch, j.prefix+"plan/manifest.json", &m); errors.Is(err, storage.ErrNotExist) {
		if m, err = w.plan(ctx, j); err != nil {
			return err
		}
		w.log.Info("transform planned", "run", p.RunID, "step", p.Step, "shards", m.Shards, "input_bytes", m.Bytes, "rebuild", m.Rebuild, "skipped", m.Skipped)
	} else if err != nil {
		return err
	}
	if len(m.Dates) == 0 {
		summary := JobSummary{Skipped: m.Skipped, Balanced: true, Reconciliation: "nothing to do: every partition's input is unchanged since its last build (start with -force to rebuild)"}
		if _, err := w.orch.Finish(ctx, p.StepRef, workflow.Succeeded, summary, nil); err != nil {
			return err
		}
		w.cleanScratch(ctx, j)
		return nil
	}
	_ = w.orch.Runs.SetProgress(ctx, p.RunID, p.Step, fmt.Sprintf("map 0/%d shards", m.Shards))
	if m.Shards == 0 {
		return w.enqueueReduces(ctx, p.StepRef, m)
	}
	for i := 0; i < m.Shards; i++ {
		task, err := tasks.NewTransformMapTask(tasks.TransformMapPayload{StepRef: p.StepRef, Shard: i, Shards: m.Shards}, w.orch.Options)
		if err != nil {
			return err
		}
		if _, err := tasks.Enqueue(ctx, w.orch.Client, task); err != nil {
			return err
		}
	}
	return nil
}

// plan lists the window's input, asks the bookmarks which partitions need
// rebuilding, and writes the shards of the objects to read: shard files
// first, the manifest last.
func (w *Worker) plan(ctx context.Context, j *jobStep) (planManifest, error) {
	var m planManifest
	candidates, err := transform.PlanShards(ctx, j.in, j.spec, j.window)
	if err != nil {
		return m, fmt.Errorf("plan shards: %w", err)
	}
	var objs []transform.Object
	var keys []string
	for _, sh := range candidates {
		for _, o := range sh.Objects {
			objs = append(objs, o)
			keys = append(keys, o.Key)
		}
	}
	dates := make([]string, 0, len(j.window.Dates()))
	for _, d := range j.window.Dates() {
		dates = append(dates, d.String())
	}
	known, err := j.marks.Objects(ctx, keys)
	if err != nil {
		return m, err
	}
	builds, err := j.marks.Builds(ctx, dates)
	if err != nil {
		return m, err
	}
	decision := bookmark.Decide(j.window.Dates(), objs, known, builds, j.specID, j.force)
	shards := transform.CutShards(decision.Objects, j.spec.ShardBytes)
	for _, sh := range shards {
		m.Bytes += sh.Bytes()
		if err := storage.WriteJSON(ctx, j.scratch, j.shardKey(sh.Index), sh); err != nil {
			return m, err
		}
	}
	m.Shards = len(shards)
	m.Rebuild, m.Skipped = decision.Rebuild, decision.Skip
	for _, d := range dates {
		if _, ok := decision.Rebuild[d]; ok {
			m.Dates = append(m.Dates, d)
		}
	}
	return m, storage.WriteJSON(ctx, j.scratch, j.prefix+"plan/manifest.json", m)
}

func (w *Worker) handleTransformMap(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Decode[tasks.TransformMapPayload](t)
	if err != nil {
		return err
	}
	j, ok, err := w.loadJob(ctx, p.StepRef)
	if err != nil || !ok {
		return err
	}
	var shard transform.Shard
	if err := storage.ReadJSON(ctx, j.scratch, j.shardKey(p.Shard), &shard); err != nil {
		return err
	}
	stats, err := transform.MapShard(ctx, j.in, j.scratch, j.prefix, j.spec, j.window, shard)
	if err != nil {
		return fmt.Errorf("map shard %d: %w", p.Shard, err)
	}
	if err := w.stats.put(ctx, p.RunID, p.Step, fmt.Sprintf("map/%05d", p.Shard), stats); err != nil {
		return err
	}
	w.metrics.observeMap(stats)
	arr, err := w.barrier.Arrive(ctx, "sluice:barrier:"+p.String()+"/map", fmt.Sprint(p.Shard), p.Shards)
	if err != nil {
		return err
	}
	_ = w.orch.Runs.SetProgress(ctx, p.RunID, p.Step, fmt.Sprintf("map %d/%d shards", arr.Arrived, p.Shards))
	if !arr.Complete {
		return nil
	}
	if arr.First {
		w.log.Info("all map shards done", "run", p.RunID, "step", p.Step, "shards", p.Shards)
	}
	var m planManifest
	if err := storage.ReadJSON(ctx, j.scratch, j.prefix+"plan/manifest.json", &m); err != nil {
		return err
	}
	return w.enqueueReduces(ctx, p.StepRef, m)
}

func (w *Worker) enqueueReduces(ctx context.Context, ref tasks.StepRef, m planManifest) error {
	for _, d := range m.Dates {
		task, err := tasks.NewTransformReduceTask(tasks.TransformReducePayload{StepRef: ref, Date: d, Shards: m.Shards, Dates: len(m.Dates)}, w.orch.Options)
		if err != nil {
			return err
		}
		if _, err := tasks.Enqueue(ctx, w.orch.Client, task); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) handleTransformReduce(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Decode[tasks.TransformReducePayload](t)
	if err != nil {
		return err
	}
	j, ok, err := w.loadJob(ctx, p.StepRef)
	if err != nil || !ok {
		return err
	}
	date, err := transform.ParseDate(p.Date)
	if err != nil {
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	stats, err := transform.ReducePartition(ctx, j.scratch, j.prefix, j.out, j.spec, date, p.Shards, w.reduce)
	if err != nil {
		return fmt.Errorf("reduce %s: %w", p.Date, err)
	}
	if err := w.stats.put(ctx, p.RunID, p.Step, "reduce/"+p.Date, stats); err != nil {
		return err
	}
	w.metrics.observeReduce(stats)
	arr, err := w.barrier.Arrive(ctx, "sluice:barrier:"+p.String()+"/reduce", p.Date, p.Dates)
	if err != nil {
		return err
	}
	_ = w.orch.Runs.SetProgress(ctx, p.RunID, p.Step, fmt.Sprintf("reduce %d/%d partitions", arr.Arrived, p.Dates))
	if !arr.Complete {
		return nil
	}
	quarantined, qkeys, err := transform.PublishQuarantine(ctx, j.scratch, j.prefix, j.out, transform.QuarantineDir(j.window, p.RunID), p.Shards)
	if err != nil {
		return err
	}
	var m planManifest
	if err := storage.ReadJSON(ctx, j.scratch, j.prefix+"plan/manifest.json", &m); err != nil {
		return err
	}
	summary, objectDates, err := w.summarize(ctx, p.StepRef, m)
	if err != nil {
		return err
	}
	if quarantined > 0 {
		summary.QuarantineFiles = qkeys
	}
	if !summary.Balanced {
		err := fmt.Errorf("reconciliation failed: %s", summary.Reconciliation)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	// Only a step whose every line is accounted for may say its partitions
	// are current.
	if err := w.recordBookmarks(ctx, j, p.RunID, m, objectDates); err != nil {
		return err
	}
	if _, err := w.orch.Finish(ctx, p.StepRef, workflow.Succeeded, summary, nil); err != nil {
		return err
	}
	w.cleanScratch(ctx, j)
	return nil
}

// cleanScratch deletes the step's plan and intermediates, which are only
// needed until the step has succeeded. A failure leaves harmless files.
func (w *Worker) cleanScratch(ctx context.Context, j *jobStep) {
	err := transform.Cleanup(ctx, j.scratch, j.prefix)
	var plan []string
	if err == nil {
		err = j.scratch.List(ctx, j.prefix+"plan/", func(o storage.ObjectInfo) error {
			plan = append(plan, o.Key)
			return nil
		})
	}
	for _, key := range plan {
		if err == nil {
			err = j.scratch.Delete(ctx, key)
		}
	}
	if err != nil {
		w.log.Warn("scratch cleanup failed; the files are harmless and can be deleted", "location", j.scratch.Location(), "prefix", j.prefix, "err", err)
	}
}

// JobSummary is what a job step records in its run: totals and the
// reconciliation of every input line.
type JobSummary struct {
	Shards        int              `json:"shards"`
	InputBytes    int64            `json:"input_bytes"`
	LinesRead     int64            `json:"lines_read"`
	RowsWritten   int64            `json:"rows_written"`
	Duplicates    int64            `json:"duplicates"`
	OutsideWindow int64            `json:"outside_window"`
	Quarantined   map[string]int64 `json:"quarantined"`
	Partitions    map[string]int64 `json:"partitions"` // date -> rows
	// Rebuilt says why each partition was rebuilt; Skipped lists those
	// whose input was unchanged, and SkippedRows the rows read for them
	// (objects that also feed a rebuilt partition) and not written.
	Rebuilt     map[string]string `json:"rebuilt,omitempty"`
	Skipped     []string          `json:"skipped,omitempty"`
	SkippedRows int64             `json:"skipped_rows,omitempty"`
	// SpilledPartitions did not fit the reduce's memory budget and were
	// sorted on local disk (same output, slower).
	SpilledPartitions []string `json:"spilled_partitions,omitempty"`
	// Collisions are source fields renamed because another field already
	// maps to their column name.
	Collisions []transform.Collision `json:"collisions,omitempty"`
	// QuarantineFiles are the keys, in the output location, of the
	// quarantined lines with their source object, line number and reason.
	QuarantineFiles []string `json:"quarantine_files,omitempty"`
	Reconciliation  string   `json:"reconciliation"`
	Balanced        bool     `json:"balanced"`
}

func (w *Worker) summarize(ctx context.Context, ref tasks.StepRef, m planManifest) (JobSummary, map[string][]transform.Date, error) {
	h, err := w.stats.all(ctx, ref.RunID, ref.Step)
	if err != nil {
		return JobSummary{}, nil, err
	}
	s := JobSummary{Quarantined: map[string]int64{}, Partitions: map[string]int64{}, Rebuilt: m.Rebuild, Skipped: m.Skipped}
	objectDates := map[string][]transform.Date{}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "map/"):
			var ms transform.MapStats
			if err := json.Unmarshal([]byte(h[k]), &ms); err != nil {
				return s, nil, fmt.Errorf("stats %s: %w", k, err)
			}
			s.Shards++
			s.addMap(ms, m.Rebuild)
			for key, ds := range ms.ObjectDates {
				objectDates[key] = ds
			}
		case strings.HasPrefix(k, "reduce/"):
			var ps transform.PartitionStats
			if err := json.Unmarshal([]byte(h[k]), &ps); err != nil {
				return s, nil, fmt.Errorf("stats %s: %w", k, err)
			}
			s.addReduce(strings.TrimPrefix(k, "reduce/"), ps)
		}
	}
	var quarantined int64
	for _, n := range s.Quarantined {
		quarantined += n
	}
	accounted := s.RowsWritten + s.Duplicates + s.OutsideWindow + quarantined + s.SkippedRows
	s.Balanced = accounted == s.LinesRead
	s.Reconciliation = fmt.Sprintf("lines read %d = rows written %d + duplicates %d + outside window %d + quarantined %d + rows of unchanged partitions %d (%d)",
		s.LinesRead, s.RowsWritten, s.Duplicates, s.OutsideWindow, quarantined, s.SkippedRows, accounted)
	return s, objectDates, nil
}

// recordBookmarks remembers what this run read and built: the event dates
// of every object it read, and for every rebuilt partition the fingerprint
// of the objects that hold its events. A partition's contributors are all
// among the objects read, because a partition is only rebuilt with every
// known object that feeds it.
func (w *Worker) recordBookmarks(ctx context.Context, j *jobStep, runID string, m planManifest, objectDates map[string][]transform.Date) error {
	var read []transform.Object
	for i := 0; i < m.Shards; i++ {
		var sh transform.Shard
		if err := storage.ReadJSON(ctx, j.scratch, j.shardKey(i), &sh); err != nil {
			return err
		}
		read = append(read, sh.Objects...)
	}
	entries := make(map[string]bookmark.ObjectEntry, len(read))
	for _, o := range read {
		e := bookmark.ObjectEntry{ETag: o.ETag, Dates: []string{}}
		for _, d := range objectDates[o.Key] {
			e.Dates = append(e.Dates, d.String())
		}
		entries[o.Key] = e
	}
	if err := j.marks.RecordObjects(ctx, entries); err != nil {
		return err
	}
	contrib := bookmark.Contributors(read, entries)
	now := time.Now().UTC()
	for _, date := range m.Dates {
		b := bookmark.Build{Date: date, Fingerprint: bookmark.Fingerprint(contrib[date]), Spec: j.specID, RunID: runID, BuiltAt: now, Objects: len(contrib[date])}
		if err := j.marks.RecordBuild(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (s *JobSummary) addMap(ms transform.MapStats, rebuilt map[string]string) {
	s.InputBytes += ms.BytesUncompressed
	s.LinesRead += ms.LinesRead
	s.OutsideWindow += ms.OutsideWindow
	for d, n := range ms.Rows {
		if _, ok := rebuilt[d.String()]; !ok {
			s.SkippedRows += n
		}
	}
	for reason, n := range ms.Quarantined {
		s.Quarantined[reason] += n
	}
}

func (s *JobSummary) addReduce(date string, ps transform.PartitionStats) {
	s.RowsWritten += ps.Rows
	s.Duplicates += ps.Duplicates
	s.Partitions[date] = ps.Rows
	if ps.SpillRuns > 0 {
		s.SpilledPartitions = append(s.SpilledPartitions, date)
	}
	for _, c := range ps.Collisions {
		if !slices.Contains(s.Collisions, c) {
			s.Collisions = append(s.Collisions, c)
		}
	}
}
