package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"sluice/internal/config"
	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/format/formats"
	"sluice/pipeline/preview"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
)

// previewCmd runs a job step on a sample of its input, in process, and
// prints what it would write; it needs no Redis and writes nothing but
// -out.
func previewCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("preview")
	common.Register(fs)
	name := fs.String("workflow", "mobile-user", "workflow of the job")
	stepName := fs.String("step", "", "job step to preview (default: the workflow's only job step)")
	from := fs.String("start", "", "first date of the window, YYYY-MM-DD (required)")
	to := fs.String("end", "", "last date of the window, YYYY-MM-DD (default: -start)")
	input := fs.String("input", "", "read the sample from this location instead of the job's input (s3://…, file:///… or a folder holding segment-logs/…)")
	objects := fs.Int("objects", 3, "input objects read per source, in turn from the received-day folders around the window")
	lines := fs.Int("lines", 2000, "lines read per source")
	rows := fs.Int("rows", 10, "sample rows printed (text)")
	columns := fs.String("columns", "", "comma-separated columns of the printed rows (default: message_id, timestamp, type, event and those the spec derives or renames)")
	examples := fs.Int("examples", 3, "example lines per quarantine reason and of the filtered rows")
	outFile := fs.String("out", "", "also write the sample's rows to a local FILE.parquet or FILE.csv (one file per date, FILE-YYYY-MM-DD.ext, when the sample spans several)")
	format := fs.String("o", "text", "output: text, or json (everything, every row)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: scheduler preview -start YYYY-MM-DD [-end YYYY-MM-DD] [-workflow NAME] [-step NAME] [flags]
Runs the job step's transform in process on a sample of its real input for the window and shows the
columns it would write, what that changes in the table's schema, sample rows, the quarantine and the
rows its where leaves out. Writes nothing to the table or the catalog; needs no Redis.`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usageErr(fmt.Errorf("-o: %q is not text or json", *format))
	}
	if *from == "" {
		return usageErr(errors.New("-start: a date is required, e.g. -start 2026-10-30"))
	}
	win, err := civil.ParseWindow(*from, *to)
	if err != nil {
		return usageErr(fmt.Errorf("-start/-end: %w", err))
	}
	ext := strings.ToLower(filepath.Ext(*outFile))
	if _, err := formats.ByName(strings.TrimPrefix(ext, ".")); *outFile != "" && err != nil {
		return usageErr(fmt.Errorf("-out: %q does not end in the name of an output format: %w", *outFile, err))
	}
	wfs, err := common.LoadWorkflows()
	if err != nil {
		return usageErr(err)
	}
	wf := wfs[*name]
	if wf == nil {
		return usageErr(fmt.Errorf("-workflow: unknown workflow %q (%s)", *name, strings.Join(slices.Sorted(mapKeys(wfs)), ", ")))
	}
	step, err := jobStepOf(wf, *stepName)
	if err != nil {
		return usageErr(err)
	}
	spec, err := transform.FromJob(step.Job)
	if err != nil {
		return usageErr(fmt.Errorf("%s: %w", step.Name, err))
	}
	inLoc := step.Job.Input
	if *input != "" {
		inLoc = *input
	}
	in, err := storeurl.Open(ctx, inLoc, common.S3)
	if err != nil {
		return fmt.Errorf("input %s: %w", inLoc, err)
	}
	out, err := storeurl.Open(ctx, step.Job.Output, common.S3)
	if err != nil {
		return fmt.Errorf("output %s: %w", step.Job.Output, err)
	}
	began := time.Now()
	res, err := preview.Run(ctx, in, out, spec, win, preview.Options{Objects: *objects, Lines: *lines, Examples: *examples})
	if err != nil {
		return err
	}
	table, err := sampleRows(ctx, res)
	if err != nil {
		return err
	}
	var written []string
	if *outFile != "" {
		if written, err = writeSample(ctx, res, *outFile); err != nil {
			return err
		}
	}
	if *format == "json" {
		return printJSON(stdout, struct {
			Workflow string `json:"workflow"`
			Step     string `json:"step"`
			*preview.Result
			Rows    []map[string]any `json:"rows"`
			Written []string         `json:"written,omitempty"`
		}{wf.Name, step.Name, res, table.json(res.Cols), written})
	}
	printPreview(stdout, wf.Name, step.Name, spec, res, table, *rows, *columns, time.Since(began))
	for _, f := range written {
		fmt.Fprintf(stdout, "wrote %s\n", f)
	}
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// jobStepOf is the named job step, or the workflow's only one.
func jobStepOf(wf *workflow.Workflow, name string) (*workflow.StepSpec, error) {
	var jobs []*workflow.StepSpec
	for i := range wf.Steps {
		if s := &wf.Steps[i]; s.Job != nil {
			if s.Name == name {
				return s, nil
			}
			jobs = append(jobs, s)
		}
	}
	var names []string
	for _, s := range jobs {
		names = append(names, s.Name)
	}
	switch {
	case name != "":
		return nil, fmt.Errorf("-step: %s has no job step %q (%s)", wf.Name, name, strings.Join(names, ", "))
	case len(jobs) == 0:
		return nil, fmt.Errorf("%s has no job step", wf.Name)
	case len(jobs) > 1:
		return nil, fmt.Errorf("-step: %s has several job steps: %s", wf.Name, strings.Join(names, ", "))
	}
	return jobs[0], nil
}

// rowTable is the sample's rows as text, every column of the table.
type rowTable struct {
	header []string
	rows   [][]string
}

// sampleRows reads every date's sample rows, as CSV text with the
// table's columns.
func sampleRows(ctx context.Context, res *preview.Result) (rowTable, error) {
	var t rowTable
	for _, d := range res.Dates() {
		var buf bytes.Buffer
		if _, err := res.WriteDate(ctx, &buf, "csv", d, true); err != nil {
			return t, err
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(recs) == 0 {
			return t, fmt.Errorf("read the sample rows: %v", err)
		}
		t.header = recs[0]
		t.rows = append(t.rows, recs[1:]...)
	}
	return t, nil
}

// json is the rows as objects of the written columns, typed.
func (t rowTable) json(cols []preview.Column) []map[string]any {
	types := map[string]column.Type{}
	for _, c := range cols {
		types[c.Name] = c.Type
	}
	out := []map[string]any{}
	for _, r := range t.rows {
		m := map[string]any{}
		for i, h := range t.header {
			typ, ok := types[h]
			if !ok {
				continue
			}
			v := r[i]
			switch {
			case v == "":
				m[h] = nil
			case typ == column.TypeBigint || typ == column.TypeDouble:
				m[h] = json.Number(v)
			case typ == column.TypeBool:
				m[h] = v == "true"
			default:
				m[h] = v
			}
		}
		out = append(out, m)
	}
	return out
}

// writeSample writes the sample's rows to file (a file per date when
// there are several).
func writeSample(ctx context.Context, res *preview.Result, file string) ([]string, error) {
	ext := filepath.Ext(file)
	format := strings.TrimPrefix(strings.ToLower(ext), ".")
	dates := res.Dates()
	var out []string
	for _, d := range dates {
		name := file
		if len(dates) > 1 {
			name = strings.TrimSuffix(file, ext) + "-" + d.String() + ext
		}
		f, err := os.Create(name)
		if err != nil {
			return out, fmt.Errorf("-out: %w", err)
		}
		// A format whose readers match columns by position gets every
		// column of the table, so the files of several dates line up.
		ff, err := formats.ByName(format)
		if err == nil {
			_, err = res.WriteDate(ctx, f, format, d, ff.Positional())
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return out, fmt.Errorf("-out %s: %w", name, err)
		}
		out = append(out, name)
	}
	return out, nil
}

func printPreview(w io.Writer, wfName, step string, spec transform.Spec, res *preview.Result, t rowTable, nrows int, columns string, took time.Duration) {
	lines := 0
	for _, o := range res.Sample {
		lines += o.Lines
	}
	fmt.Fprintf(w, "preview of %s (%s) for %s: %s and %s of %s, in %s; nothing written\n", step, wfName, res.Window,
		plural(len(res.Sample), "object"), plural(lines, "line"), res.Input, took.Round(time.Millisecond))
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	st := res.Stats
	fmt.Fprintf(w, "read %d lines: %d rows, %d filtered out by where, %d outside the window, %d quarantined\n",
		st.LinesRead, st.RowsTotal(), st.FilteredOut, st.OutsideWindow, st.QuarantinedTotal())

	// The columns the spec or the sample changes, one a line; the others
	// as a list.
	var same []string
	changed := 0
	for _, c := range res.Cols {
		if c.Status == "" {
			same = append(same, c.Name+" "+c.Type.String())
		} else {
			changed++
		}
	}
	fmt.Fprintf(w, "\ncolumns (%d):\n", len(res.Cols))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range res.Cols {
		if c.Status != "" {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, c.Type, c.Status)
		}
	}
	tw.Flush()
	if len(same) > 0 {
		label := "as in the table"
		if res.Schema.Version == 0 {
			label = "new table"
		}
		fmt.Fprintf(w, "  %s:\n", label)
		line := " "
		for _, c := range same {
			if len(line)+len(c)+2 > 100 {
				fmt.Fprintln(w, line)
				line = " "
			}
			line += " " + c + ","
		}
		fmt.Fprintln(w, strings.TrimSuffix(line, ","))
	}

	sc := res.Schema
	fmt.Fprintln(w)
	switch {
	case sc.Refused != "":
		fmt.Fprintf(w, "schema: a run would FAIL: %s\n", sc.Refused)
	case sc.Version == 0:
		fmt.Fprintf(w, "schema: a new table of %d columns\n", len(res.Cols))
	case sc.Changes.Empty():
		fmt.Fprintf(w, "schema: no change to the table's version %d\n", sc.Version)
	default:
		var parts []string
		if n := len(sc.Changes.Added); n > 0 {
			parts = append(parts, fmt.Sprintf("%s (%s)", plural(n, "new column"), strings.Join(sc.Changes.Added, ", ")))
		}
		if n := len(sc.Changes.Widened); n > 0 {
			var ws []string
			for _, x := range sc.Changes.Widened {
				ws = append(ws, x.String())
			}
			parts = append(parts, fmt.Sprintf("%d widened (%s; a run rewrites the published files that hold the narrower type)", n, strings.Join(ws, ", ")))
		}
		if n := len(sc.Changes.Moved); n > 0 {
			var ms []string
			for _, x := range sc.Changes.Moved {
				ms = append(ms, x.String())
			}
			parts = append(parts, fmt.Sprintf("%d moved (%s; the old column keeps what older partitions hold)", n, strings.Join(ms, ", ")))
		}
		fmt.Fprintf(w, "schema: against the table's version %d: %s\n", sc.Version, strings.Join(parts, "; "))
	}
	for _, c := range sc.Collisions {
		fmt.Fprintf(w, "  field %s is named %s: %s is taken\n", c.Path, c.Name, c.Natural)
	}

	if len(res.Quar) > 0 {
		fmt.Fprintln(w, "\nquarantine:")
		for _, q := range res.Quar {
			fmt.Fprintf(w, "  %s %d\n", q.Reason, q.Count)
			for _, e := range q.Examples {
				fmt.Fprintf(w, "    %s:%d: %s\n      %s\n", e.Key, e.Line, e.Detail, clip(e.Raw, 160))
			}
		}
	}
	if res.Filter.Count > 0 {
		fmt.Fprintf(w, "\nfiltered out by where (%s): %d\n", spec.Where, res.Filter.Count)
		for _, e := range res.Filter.Examples {
			fmt.Fprintf(w, "    %s:%d: %s\n", e.Key, e.Line, clip(e.Raw, 160))
		}
	}

	show := shownColumns(spec, res, t.header, columns)
	fmt.Fprintf(w, "\nrows (%d of %d; -columns to choose, -o json for all):\n", min(nrows, len(t.rows)), len(t.rows))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	idx := make([]int, len(show))
	for i, c := range show {
		idx[i] = slices.Index(t.header, c)
	}
	fmt.Fprintln(tw, "  "+strings.Join(show, "\t"))
	for _, r := range t.rows[:min(nrows, len(t.rows))] {
		vals := make([]string, len(idx))
		for i, j := range idx {
			if j >= 0 {
				vals[i] = clip(r[j], 32)
			}
		}
		fmt.Fprintln(tw, "  "+strings.Join(vals, "\t"))
	}
	tw.Flush()
}

// shownColumns are the columns of the printed rows: those asked for, or a
// few that identify an event and every column the spec makes.
func shownColumns(spec transform.Spec, res *preview.Result, header []string, asked string) []string {
	if asked != "" {
		return strings.Split(asked, ",")
	}
	local, _ := spec.TimestampColumns()
	want := []string{"message_id", local, "type", "event"}
	for _, d := range spec.Derive {
		want = append(want, d.Name)
	}
	for _, to := range spec.Rename {
		want = append(want, to)
	}
	var out []string
	for _, c := range want {
		if slices.Contains(header, c) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// clip shortens s to n runes, on one line.
func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
