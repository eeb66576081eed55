package worker

import (
	"context"
	"fmt"
	"time"

	"sluice/pipeline/fault"
	"sluice/pipeline/format/parquet"
	"sluice/pipeline/icetable"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// registerSummary is an Iceberg registration step's summary in the run
// record.
type registerSummary struct {
	Table            string `json:"table"`
	Location         string `json:"location"`
	SnapshotID       int64  `json:"snapshot_id"`
	RunID            string `json:"run_id,omitempty"` // the run that committed it
	Snapshots        int    `json:"snapshots"`
	Files            int    `json:"files"`
	Rows             int64  `json:"rows"`
	Partitions       int    `json:"partitions"`
	ExpiredSnapshots int    `json:"expired_snapshots,omitempty"`
	// RemovedOrphans are files of the partition folders no snapshot
	// references (assembled for commits that never landed), deleted once
	// older than icetable.DefaultOrphanAge.
	RemovedOrphans int `json:"removed_orphans,omitempty"`
	// Compaction is what joining the small files of the run's
	// partitions did (table.compact).
	Compaction *icetable.CompactResult `json:"compaction,omitempty"`
}

// registerIceberg is the output crawler's step for an Iceberg table: the
// job's commit registered the table in its catalog already, so instead of
// crawling the folders this refreshes it (loads its current snapshot,
// which fails when the job never committed), joins the small files of the
// partitions the run committed (table.compact), expires the snapshots older
// than the table's snapshot_max_age (deleting the files only they
// referenced), deletes the files of commits that never landed once they
// are old (the sweep of an Iceberg table) and reports what the table
// holds.
func (w *Worker) registerIceberg(ctx context.Context, wf *workflow.Workflow, step *workflow.StepSpec, ref tasks.StepRef) (registerSummary, error) {
	jobStep := wf.IcebergJobOf(step.Crawler)
	if jobStep == nil {
		return registerSummary{}, fault.Permanent(fmt.Errorf("step %s: no Iceberg job writes %s", step.Name, step.Crawler.Location))
	}
	out, err := w.bucket(ctx, jobStep.Job.Output)
	if err != nil {
		return registerSummary{}, err
	}
	tb, err := icetable.Open(icetable.ConfigOf(jobStep.Job.Table), out, icetable.IOProperties(w.s3))
	if err != nil {
		return registerSummary{}, fault.Permanent(fmt.Errorf("step %s: %w", step.Name, err))
	}
	begin := time.Now()
	compacted, err := w.compactRun(ctx, tb, jobStep, ref)
	if err != nil {
		return registerSummary{}, err
	}
	expired, err := tb.Expire(ctx)
	if err != nil {
		return registerSummary{}, err
	}
	orphans, err := tb.RemoveOrphans(ctx, icetable.DefaultOrphanAge)
	if err != nil {
		return registerSummary{}, err
	}
	snaps, err := tb.Snapshots(ctx)
	if err != nil {
		return registerSummary{}, err
	}
	files, err := tb.Files(ctx)
	if err != nil {
		return registerSummary{}, err
	}
	sum := registerSummary{Table: tb.Ident(), Location: tb.Location(), Snapshots: len(snaps), Files: len(files), ExpiredSnapshots: expired, RemovedOrphans: len(orphans), Compaction: compacted}
	for _, s := range snaps {
		if s.Current {
			sum.SnapshotID, sum.RunID = s.ID, s.RunID
		}
	}
	dates := map[string]bool{}
	for _, f := range files {
		sum.Rows += f.Rows
		dates[f.Date] = true
	}
	sum.Partitions = len(dates)
	w.logFor(ctx).Info("iceberg table refreshed", "run", ref.RunID, "step", ref.Step, "table", sum.Table, "snapshot", sum.SnapshotID,
		"files", sum.Files, "rows", sum.Rows, "expired_snapshots", expired, "removed_orphans", len(orphans), "took", time.Since(begin))
	return sum, nil
}

// compactRun joins the small files of the partitions the run's snapshot
// replaced, as one compaction named by the run (so that a retried step
// recognises it), aiming at the job's target_file_bytes. It does nothing
// when the table's compact is false or the run committed no snapshot.
func (w *Worker) compactRun(ctx context.Context, tb *icetable.Table, jobStep *workflow.StepSpec, ref tasks.StepRef) (*icetable.CompactResult, error) {
	if !jobStep.Job.Table.Compacts() {
		return nil, nil
	}
	dates, err := tb.RunDates(ctx, ref.RunID)
	if err != nil {
		return nil, err
	}
	if len(dates) == 0 {
		return nil, nil
	}
	spec, err := transform.FromJob(jobStep.Job)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("step %s: %w", jobStep.Name, err))
	}
	res, err := tb.Compact(ctx, icetable.CompactOptions{ID: ref.RunID, Step: ref.Step, Dates: dates,
		TargetFileBytes: spec.TargetFileBytes, KV: parquet.KeyValue(spec.FormatOptions())})
	if err != nil {
		return nil, err
	}
	if res.Landed || len(res.Skipped) > 0 {
		w.logFor(ctx).Info("iceberg small files joined", "run", ref.RunID, "table", tb.Ident(), "snapshot", res.SnapshotID,
			"joined", res.Joined, "written", res.Written, "partitions", res.Partitions, "skipped", res.Skipped)
	}
	return &res, nil
}
