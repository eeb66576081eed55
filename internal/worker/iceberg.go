package worker

import (
	"context"
	"fmt"
	"time"

	"sluice/pipeline/fault"
	"sluice/pipeline/icetable"
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
}

// registerIceberg is the output crawler's step for an Iceberg table: the
// job's commit registered the table in its catalog already, so instead of
// crawling the folders this refreshes it (loads its current snapshot,
// which fails when the job never committed), expires the snapshots older
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
	sum := registerSummary{Table: tb.Ident(), Location: tb.Location(), Snapshots: len(snaps), Files: len(files), ExpiredSnapshots: expired, RemovedOrphans: len(orphans)}
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
