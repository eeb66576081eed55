package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"sluice/internal/redisstore"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
	"sluice/pipeline/workflow"
)

// Table is the output table of a job step, named as the catalog names it:
// the database and table of the workflow's crawler over the job's output
// (segmentlogs.mobile), or, when no crawler catalogs it, the workflow and
// the step.
type Table struct {
	Workflow string
	Step     string // the job step that publishes it
	Database string
	Name     string
	Output   string // the job's output location
	Scratch  string
}

// ID is "database.table".
func (t Table) ID() string { return t.Database + "." + t.Name }

func tablesOf(wf *workflow.Workflow) []Table {
	var out []Table
	for i := range wf.Steps {
		j := wf.Steps[i].Job
		if j == nil {
			continue
		}
		t := Table{Workflow: wf.Name, Step: wf.Steps[i].Name, Database: wf.Name, Name: wf.Steps[i].Name, Output: j.Output, Scratch: j.Scratch}
		for k := range wf.Steps {
			c := wf.Steps[k].Crawler
			if c != nil && sameLocation(joinPath(c.Location, c.Path), j.Output) {
				t.Database, t.Name = c.Database, c.Table
				break
			}
		}
		out = append(out, t)
	}
	return out
}

func joinPath(loc, p string) string {
	if p == "" {
		return loc
	}
	return strings.TrimSuffix(loc, "/") + "/" + p
}

func sameLocation(a, b string) bool { return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/") }

// Tables lists the output tables of the loaded workflows' jobs, by id.
func (o *Orchestrator) Tables() []Table {
	var out []Table
	for _, name := range o.names {
		out = append(out, tablesOf(o.workflows[name])...)
	}
	slices.SortFunc(out, func(a, b Table) int { return strings.Compare(a.ID(), b.ID()) })
	return out
}

// ErrUnknownTable is returned for a table no loaded job publishes.
var ErrUnknownTable = errors.New("unknown table")

// Table finds a table by "database.table".
func (o *Orchestrator) Table(id string) (Table, error) {
	for _, t := range o.Tables() {
		if t.ID() == id {
			return t, nil
		}
	}
	return Table{}, fmt.Errorf("%w %q", ErrUnknownTable, id)
}

// recordPublished remembers the newest partition a job step's run
// published rows in (sluice_table_newest_partition_timestamp_seconds).
// It is advisory: a failure is logged.
func (o *Orchestrator) recordPublished(ctx context.Context, wf, step, runID string, summary any) {
	sum, ok := summary.(*job.Summary)
	if !ok || sum == nil {
		return
	}
	var newest civil.Date
	for date, rows := range sum.Partitions {
		d, err := civil.Parse(date)
		if err == nil && rows > 0 && newest.Before(d) {
			newest = d
		}
	}
	if newest.IsZero() {
		return
	}
	if err := o.runs.RecordPublished(ctx, wf, step, newest, runID); err != nil {
		o.log.Warn("newest published partition not recorded", "run", runID, "step", step, "err", err)
	}
}

// Published is the newest partition each job step of a workflow has
// published rows in, by step.
func (o *Orchestrator) Published(ctx context.Context, wf string) (map[string]redisstore.Published, error) {
	return o.runs.Published(ctx, wf)
}
