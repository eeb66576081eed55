package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"sluice/internal/api"
	"sluice/internal/redisstore"
	"sluice/pipeline/job"
	"sluice/pipeline/workflow"
)

func fmtDuration(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(100 * time.Millisecond).String()
}

// printRun prints a run: a line for the run, a table of its steps, and a
// few lines per step summary (every field with verbose), then how to see
// every detail.
func printRun(w io.Writer, run api.Run, verbose bool) {
	printRunHint(w, run, verbose, fmt.Sprintf("scheduler show -v %s", run.ID))
}

// printRunHint is printRun with the command that shows every detail.
func printRunHint(w io.Writer, run api.Run, verbose bool, more string) {
	fmt.Fprintf(w, "run %s: %s, window %s..%s, %s\n", run.ID, run.State, run.Window.Start, run.Window.End, fmtDuration(run.DurationSeconds))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tKIND\tSTATE\tSTARTED\tTOOK\tNOTE")
	for _, s := range run.Steps {
		started, took := "", ""
		if s.StartedAt != nil {
			started = s.StartedAt.Format("15:04:05")
			if s.EndedAt != nil {
				took = fmtDuration(*s.DurationSeconds)
			}
		}
		note := ""
		if s.Progress != nil {
			note = s.Progress.Text
		}
		if s.Error != "" {
			note = "error: " + s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.State, started, took, note)
	}
	tw.Flush()
	if hasSummary(run) && !verbose {
		fmt.Fprintln(w)
	}
	for _, s := range run.Steps {
		if len(s.Summary) == 0 {
			continue
		}
		if verbose {
			var pretty map[string]any
			_ = json.Unmarshal(s.Summary, &pretty)
			b, _ := json.MarshalIndent(pretty, "", "  ")
			fmt.Fprintf(w, "\n%s summary:\n%s\n", s.Name, indent(string(b), "  "))
			continue
		}
		switch s.Kind {
		case string(workflow.KindJob):
			printJobSummary(w, s)
		case string(workflow.KindCrawler):
			printCrawlSummary(w, s)
		}
	}
	if !verbose && hasSummary(run) {
		fmt.Fprintf(w, "\n(%s for every detail)\n", more)
	}
}

func hasSummary(run api.Run) bool {
	for _, s := range run.Steps {
		if len(s.Summary) > 0 {
			return true
		}
	}
	return false
}

func printJobSummary(w io.Writer, s api.Step) {
	var sum job.Summary
	if json.Unmarshal(s.Summary, &sum) != nil {
		return
	}
	fmt.Fprintf(w, "%s: read %s (%s), %s; wrote %s in %s; books %s\n", s.Name, plural(sum.InputObjects, "object"),
		humanize.IBytes(uint64(sum.InputBytesCompressed)), plural(int(sum.LinesRead), "line"), plural(int(sum.RowsWritten), "row"),
		plural(len(sum.Partitions), "partition"), balanced(sum.Balanced))
	if len(sum.Rebuilt) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, d := range slices.Sorted(maps.Keys(sum.Rebuilt)) {
			fmt.Fprintf(tw, "  date=%s\trebuilt (%s):\t%s in %s\n", d, sum.Rebuilt[d], plural(int(sum.Partitions[d]), "row"), plural(sum.Files[d], "file"))
		}
		tw.Flush()
	}
	if len(sum.Skipped) > 0 {
		fmt.Fprintf(w, "  unchanged, not rebuilt: %s\n", strings.Join(sum.Skipped, ", "))
	}
	if sum.Reconciliation != "" && !sum.Balanced || len(sum.Rebuilt) == 0 {
		fmt.Fprintf(w, "  %s\n", sum.Reconciliation)
	}
	if ic := sum.Iceberg; ic != nil {
		how := "committed"
		if !ic.Landed {
			how = "committed by an earlier attempt"
		}
		fmt.Fprintf(w, "  iceberg: table %s snapshot %d %s (+%d/-%d files, %d ms)\n", ic.Table, ic.SnapshotID, how, ic.AddedFiles, ic.RemovedFiles, ic.CommitMillis)
	}
	var q []string
	for _, r := range slices.Sorted(maps.Keys(sum.Quarantined)) {
		q = append(q, fmt.Sprintf("%s %d", r, sum.Quarantined[r]))
	}
	if len(q) > 0 {
		fmt.Fprintf(w, "  quarantined: %s in %s\n", strings.Join(q, ", "), sum.QuarantineDir)
	}
}

func balanced(ok bool) string {
	if ok {
		return "balanced"
	}
	return "NOT balanced"
}

func printCrawlSummary(w io.Writer, s api.Step) {
	var raw map[string]any
	if json.Unmarshal(s.Summary, &raw) != nil {
		return
	}
	if _, ok := raw["snapshot_id"]; ok {
		// An Iceberg table's registration step.
		var r struct {
			Table      string `json:"table"`
			SnapshotID int64  `json:"snapshot_id"`
			RunID      string `json:"run_id"`
			Snapshots  int    `json:"snapshots"`
			Files      int    `json:"files"`
			Rows       int64  `json:"rows"`
			Partitions int    `json:"partitions"`
			Expired    int    `json:"expired_snapshots"`
		}
		_ = json.Unmarshal(s.Summary, &r)
		fmt.Fprintf(w, "%s: iceberg table %s at snapshot %d (run %s): %s in %s, %s; %s kept, %d expired\n", s.Name, r.Table, r.SnapshotID, r.RunID,
			plural(int(r.Rows), "row"), plural(r.Files, "file"), plural(r.Partitions, "partition"), plural(r.Snapshots, "snapshot"), r.Expired)
		return
	}
	num := func(k string) int {
		switch v := raw[k].(type) {
		case float64:
			return int(v)
		case []any:
			return len(v)
		}
		return 0
	}
	fmt.Fprintf(w, "%s: %s added, %d updated, %s added, %s skipped\n", s.Name,
		plural(num("partitions_added"), "partition"), num("partitions_updated"), plural(num("columns_added"), "column"), plural(num("skipped_count"), "file"))
	if w2, _ := raw["warning"].(string); w2 != "" {
		fmt.Fprintf(w, "  warning: %s\n", w2)
	}
}

func printDryRun(w io.Writer, dr *api.DryRun) {
	fmt.Fprintf(w, "dry run of %s %s..%s%s: nothing starts\n", dr.Workflow, dr.Window.Start, dr.Window.End, map[bool]string{true: " (force)"}[dr.Force])
	if dr.Active != "" {
		fmt.Fprintf(w, "note: run %s of an overlapping window is active; a start now would return it or be refused\n", dr.Active)
	}
	for _, s := range dr.Steps {
		fmt.Fprintln(w, api.DryRunLine(s))
		if s.Warning != "" {
			fmt.Fprintf(w, "  warning: %s\n", s.Warning)
		}
		if s.Refused != "" {
			fmt.Fprintf(w, "  the plan would refuse: %s\n", s.Refused)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, p := range s.Partitions {
			action, last := "keep", "never built"
			if p.Rebuild {
				action = fmt.Sprintf("rebuild (~%d files)", p.Files)
			}
			if b := p.LastBuild; b != nil {
				last = fmt.Sprintf("last built %s by %s: %s in %s", b.BuiltAt.UTC().Format(time.RFC3339), b.RunID, plural(int(b.Rows), "row"), plural(b.Files, "file"))
			}
			fmt.Fprintf(tw, "  date=%s\t%s\t%s\t%s\n", p.Date, action, p.Reason, last)
		}
		tw.Flush()
	}
}

// progress shows a waited-for run's progress: a bar with rate and ETA per
// phase on a terminal, a plain line per change otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	bar   *progressbar.ProgressBar
	phase string
	began time.Time
	last  string
}

func newProgress(w *os.File) *progress {
	return &progress{w: w, tty: term.IsTerminal(int(w.Fd())), began: time.Now()}
}

func (p *progress) update(r redisstore.Run) {
	phase, done, total, unit := "", 0, 0, ""
	for _, name := range slices.Sorted(maps.Keys(r.Steps)) {
		s := r.Steps[name]
		if s.State != workflow.Running {
			continue
		}
		phase = name
		if pr := api.ParseProgress(s.Progress); pr != nil && pr.Total > 0 {
			phase, done, total, unit = name+" "+pr.Phase, pr.Done, pr.Total, pr.Unit
		}
	}
	if phase != p.phase {
		p.finishBar()
		p.phase, p.began = phase, time.Now()
	}
	if !p.tty {
		p.line(r, phase, done, total, unit)
		return
	}
	if phase == "" {
		return
	}
	if p.bar == nil {
		max := total
		if max == 0 {
			max = -1 // a spinner: a crawl has no count
		}
		p.bar = progressbar.NewOptions(max, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(phase),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit),
			progressbar.OptionSetPredictTime(true), progressbar.OptionShowElapsedTimeOnFinish(), progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }))
	}
	if total > 0 {
		_ = p.bar.Set(done)
	} else {
		_ = p.bar.Add(1)
	}
}

// line prints the progress as a plain line, with a rate and an estimate of
// the time left once a phase has counted something.
func (p *progress) line(r redisstore.Run, phase string, done, total int, unit string) {
	text := string(r.State)
	if phase != "" {
		text = phase
	}
	if total > 0 {
		text += fmt.Sprintf(" %d/%d %s", done, total, unit)
		if el := time.Since(p.began).Seconds(); done > 0 && el > 0 {
			rate := float64(done) / el
			text += fmt.Sprintf(" (%.1f/s, ETA %s)", rate, (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second))
		}
	}
	if text == p.last {
		return
	}
	p.last = text
	fmt.Fprintf(p.w, "%s %s\n", time.Now().Format("15:04:05"), text)
}

func (p *progress) finishBar() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}

func (p *progress) done() { p.finishBar() }
