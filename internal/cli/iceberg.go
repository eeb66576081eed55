package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"sluice/internal/config"
	"sluice/pipeline/civil"
	"sluice/pipeline/format/parquet"
	"sluice/pipeline/icetable"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
)

// icebergCmd lists an Iceberg job's snapshots, rolls the table back to the
// snapshot before a run's, expires old snapshots, or joins small files.
func icebergCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("iceberg")
	common.Register(fs)
	name := fs.String("workflow", "mobile-user-iceberg", "workflow whose Iceberg table to work on")
	stepName := fs.String("step", "", "its job step (default: the workflow's only Iceberg job)")
	run := fs.String("run", "", "rollback: undo this run's snapshot (the table returns to the snapshot before it)")
	snap := fs.Int64("snapshot", 0, "rollback: make this snapshot current")
	dates := fs.String("dates", "", "compact: only these partitions, comma-separated yyyy-mm-dd (default: every partition)")
	minFiles := fs.Int("min-files", 2, "compact: join a partition's small files only when it has at least this many")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: scheduler iceberg [flags] snapshots
       scheduler iceberg [flags] rollback (-run RUN_ID | -snapshot ID)
       scheduler iceberg [flags] expire
       scheduler iceberg [flags] compact [-dates D1,D2] [-min-files N]`)
		fs.PrintDefaults()
	}
	if err := parse(fs, hoistFlags(fs, args)); err != nil {
		return err
	}
	sub := fs.Arg(0)
	if !slices.Contains([]string{"snapshots", "rollback", "expire", "compact"}, sub) {
		fs.Usage()
		return usageErr(fmt.Errorf("iceberg: unknown subcommand %q", sub))
	}
	if sub == "rollback" && (*run == "") == (*snap == 0) {
		return usageErr(fmt.Errorf("iceberg rollback: give -run or -snapshot, one of them"))
	}
	wfs, err := common.LoadWorkflows()
	if err != nil {
		return usageErr(err)
	}
	wf := wfs[*name]
	if wf == nil {
		return usageErr(fmt.Errorf("-workflow: unknown workflow %q", *name))
	}
	step, err := icebergStep(wf, *stepName)
	if err != nil {
		return usageErr(err)
	}
	out, err := storeurl.Open(ctx, step.Job.Output, common.S3)
	if err != nil {
		return fmt.Errorf("output of %s: %w", step.Name, err)
	}
	tb, err := icetable.Open(icetable.ConfigOf(step.Job.Table), out, icetable.IOProperties(common.S3))
	if err != nil {
		return usageErr(fmt.Errorf("step %s: %w", step.Name, err))
	}
	switch sub {
	case "compact":
		return compactCmd(ctx, tb, step, *dates, *minFiles, stdout)
	case "snapshots":
		snaps, err := tb.Snapshots(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "table %s at %s: %d snapshots\n", tb.Ident(), tb.Location(), len(snaps))
		if tbl, err := tb.Load(ctx); err == nil {
			// What engines without the catalog (DuckDB's iceberg_scan) read.
			fmt.Fprintf(stdout, "metadata: %s\n", tbl.MetadataLocation())
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SNAPSHOT\tPARENT\tCOMMITTED\tOPERATION\tRUN\tFILES +/-\tROWS\t")
		for _, s := range snaps {
			cur := ""
			if s.Current {
				cur = "current"
			}
			by := s.RunID
			if s.Compaction != "" {
				by = "compaction " + s.Compaction
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t+%s/-%s\t%s\t%s\n", s.ID, parentText(s.ParentID), s.At.Format(time.RFC3339), s.Operation, by,
				orZero(s.Summary["added-data-files"]), orZero(s.Summary["deleted-data-files"]), orZero(s.Summary["total-records"]), cur)
		}
		return tw.Flush()
	case "rollback":
		to := *snap
		if *run != "" {
			if to, err = tb.RollbackRun(ctx, *run); err != nil {
				return err
			}
		} else if err := tb.Rollback(ctx, to); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "table %s: snapshot %d is current\n", tb.Ident(), to)
		return nil
	}
	if step.Job.Table.SnapshotMaxAge <= 0 {
		return usageErr(fmt.Errorf("iceberg expire: step %s's table has no snapshot_max_age: every snapshot is kept", step.Name))
	}
	n, err := tb.Expire(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "table %s: %s expired (older than %s, the newest %d kept)\n", tb.Ident(), plural(n, "snapshot"), step.Job.Table.SnapshotMaxAge, max(step.Job.Table.RetainLast, 1))
	return nil
}

// compactCmd joins the small files of the table's partitions (all, or
// those of dates) into files of the job's target_file_bytes, in one
// snapshot named by the time it started.
func compactCmd(ctx context.Context, tb *icetable.Table, step *workflow.StepSpec, dates string, minFiles int, stdout io.Writer) error {
	spec, err := transform.FromJob(step.Job)
	if err != nil {
		return usageErr(fmt.Errorf("step %s: %w", step.Name, err))
	}
	o := icetable.CompactOptions{ID: "cli-" + time.Now().UTC().Format("20060102T150405.000Z"), Step: step.Name,
		TargetFileBytes: spec.TargetFileBytes, MinFiles: minFiles, KV: parquet.KeyValue(spec.FormatOptions())}
	if dates != "" {
		for _, d := range strings.Split(dates, ",") {
			if _, err := civil.Parse(d); err != nil {
				return usageErr(fmt.Errorf("-dates: %q: %w", d, err))
			}
			o.Dates = append(o.Dates, d)
		}
	}
	res, err := tb.Compact(ctx, o)
	if err != nil {
		return err
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(stdout, "left as it was: %s\n", s)
	}
	switch {
	case !res.Landed && len(res.Skipped) > 0:
		fmt.Fprintf(stdout, "table %s: nothing joined\n", tb.Ident())
		return nil
	case !res.Landed:
		fmt.Fprintf(stdout, "table %s: no partition has %d or more files under %s (3/4 of target_file_bytes)\n", tb.Ident(), max(minFiles, 2), humanize.IBytes(uint64(spec.TargetFileBytes*3/4)))
		return nil
	}
	fmt.Fprintf(stdout, "table %s: %s joined into %s (%s) in %s; snapshot %d is current\n", tb.Ident(), plural(res.Joined, "small file"),
		plural(res.Written, "file"), humanize.IBytes(uint64(res.Bytes)), plural(len(res.Partitions), "partition"), res.SnapshotID)
	return nil
}

// icebergStep is the Iceberg job step of wf named name, or its only one.
func icebergStep(wf *workflow.Workflow, name string) (*workflow.StepSpec, error) {
	var found []*workflow.StepSpec
	for i := range wf.Steps {
		s := &wf.Steps[i]
		if s.Job != nil && s.Job.Iceberg() && (name == "" || s.Name == name) {
			found = append(found, s)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && name != "":
		return nil, fmt.Errorf("-step: workflow %s has no Iceberg job step %q", wf.Name, name)
	case len(found) == 0:
		return nil, fmt.Errorf("-workflow: workflow %s has no job writing an Iceberg table", wf.Name)
	}
	return nil, fmt.Errorf("-step: workflow %s has %d Iceberg job steps: name one", wf.Name, len(found))
}

func parentText(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
