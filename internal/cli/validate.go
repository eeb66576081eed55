package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"sluice/internal/api"
	"sluice/internal/config"
	"sluice/pipeline/catalog"
	"sluice/pipeline/column"
	"sluice/pipeline/expr"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/storeurl"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
)

// validateCmd checks workflow files and prints every problem with its
// file, line and column; it exits 2 when there is any.
func validateCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("validate")
	common.Register(fs)
	useCatalog := fs.Bool("check-columns", true, "also check the columns the jobs name (expressions, rename) against the catalog's tables of their sources; a catalog that cannot be read is noted, not a problem")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: scheduler validate [flags] [FILE|FOLDER]...   (default: -workflows)
Prints every problem as FILE:LINE:COLUMN: FIELD: MESSAGE; exits 0 when there is none, 2 otherwise.`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{common.Workflows}
	}
	var files []string
	for _, p := range paths {
		fsFiles, err := workflowFiles(p)
		if err != nil {
			return usageErr(err)
		}
		files = append(files, fsFiles...)
	}
	total := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return usageErr(err)
		}
		problems, notes := checkWorkflowFile(ctx, raw, common, *useCatalog)
		for _, n := range notes {
			fmt.Fprintf(os.Stderr, "%s: note: %s\n", f, n)
		}
		for _, p := range problems {
			fmt.Fprintf(stdout, "%s:%d:%d: %s\n", f, p.Line, p.Column, p)
		}
		total += len(problems)
	}
	if total > 0 {
		return usageErr(fmt.Errorf("%s in %s", plural(total, "problem"), plural(len(files), "file")))
	}
	fmt.Fprintf(stdout, "%s: ok\n", plural(len(files), "workflow file"))
	return nil
}

// workflowFiles is a file, or the *.yaml and *.yml files of a folder.
func workflowFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var out []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(path, pat))
		out = append(out, m...)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no .yaml files", path)
	}
	return out, nil
}

// checkWorkflowFile lists the problems of one workflow file, in line
// order, and notes on what could not be checked.
func checkWorkflowFile(ctx context.Context, raw []byte, common config.Common, useCatalog bool) ([]workflow.Problem, []string) {
	checked, problems := workflow.Check(raw, os.LookupEnv)
	var notes []string
	if wf := checked.Workflow; wf != nil {
		var cat *catalog.Store
		if useCatalog {
			if b, err := storeurl.Open(ctx, wf.Catalog, common.S3); err != nil {
				notes = append(notes, fmt.Sprintf("columns not checked: catalog %s: %v", wf.Catalog, err))
			} else {
				cat = catalog.New(b)
			}
		}
		for i := range wf.Steps {
			if wf.Steps[i].Job != nil {
				p, n := checkJob(ctx, checked, i, cat)
				problems = append(problems, p...)
				notes = append(notes, n...)
			}
		}
	}
	slices.SortStableFunc(problems, func(a, b workflow.Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return problems, notes
}

// yamlKeys are the YAML names of a struct's fields.
func yamlKeys(v any) []string {
	var out []string
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// checkJob checks job step i's transform block: unknown fields, bad
// values, expressions that do not compile, and (with a catalog) columns
// that the sources' tables do not have.
func checkJob(ctx context.Context, c workflow.Checked, i int, cat *catalog.Store) ([]workflow.Problem, []string) {
	step := &c.Workflow.Steps[i]
	field := fmt.Sprintf("steps[%d] (%s).job.transform", i, step.Name)
	node := c.JobNode(i)
	at := func(path, msg string) workflow.Problem {
		n := workflow.Find(node, path)
		p := workflow.Problem{Field: field, Message: msg}
		if path != "" {
			p.Field += "." + path
		}
		if n != nil {
			p.Line, p.Column = n.Line, n.Column
		}
		return p
	}
	problems := workflow.UnknownKeys(node, field, yamlKeys(transform.Spec{}))
	if d := workflow.Find(node, "derive"); d != nil && d.Kind == yaml.SequenceNode {
		for j, item := range d.Content {
			problems = append(problems, workflow.UnknownKeys(item, fmt.Sprintf("%s.derive[%d]", field, j), yamlKeys(expr.Derive{}))...)
		}
	}
	spec, err := transform.DecodeJob(step.Job)
	if err != nil {
		if len(problems) == 0 {
			problems = append(problems, at("", err.Error()))
		}
		return problems, nil
	}
	broken := map[string]bool{} // fields of the expressions that do not compile
	for _, e := range spec.Problems() {
		if ee, ok := errors.AsType[*expr.Error](e); ok {
			problems = append(problems, at(ee.Field, ee.Err.Error()))
			broken[ee.Field] = true
			continue
		}
		path, msg, _ := strings.Cut(e.Error(), ": ")
		problems = append(problems, at(path, msg))
	}
	if cat == nil || (spec.Where == "" && len(spec.Derive) == 0 && len(spec.Rename) == 0) {
		return problems, nil
	}
	known, tables, err := sourceColumns(ctx, c.Workflow, step.Job, spec, cat)
	if err != nil {
		return problems, []string{fmt.Sprintf("%s: columns not checked: %v", step.Name, err)}
	}
	unknown := func(path, name, src string) {
		msg := fmt.Sprintf("column %s does not exist in %s", name, strings.Join(tables, " or "))
		switch {
		case slices.ContainsFunc(spec.Derive, func(d expr.Derive) bool { return d.Name == name }):
			msg = fmt.Sprintf("%s is a derived column; expressions read the event's fields", name)
		case slices.Contains(mapsValues(spec.Rename), name):
			msg = fmt.Sprintf("%s is a rename's new name; expressions read the fields by their names before rename", name)
		default:
			// properties.revenue: the field is a flattened column.
			if m := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`).FindStringSubmatch(src); m != nil {
				if flat := column.NameOf(name + m[1]); slices.Contains(known, flat) {
					msg += fmt.Sprintf(" (fields are flattened: %s%s is %s)", name, m[1], flat)
					break
				}
			}
			if s := closest(name, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
		}
		problems = append(problems, at(path, msg))
	}
	check := func(path, src string) {
		cols, err := expr.Columns(src)
		if err != nil || broken[path] {
			return
		}
		for _, col := range cols {
			if !slices.Contains(known, col) {
				unknown(path, col, src)
			}
		}
	}
	if spec.Where != "" {
		check("where", spec.Where)
	}
	for j, d := range spec.Derive {
		check(fmt.Sprintf("derive[%d].expression", j), d.Expression)
	}
	for from := range spec.Rename {
		if !slices.Contains(known, from) {
			unknown("rename."+from, from, "")
		}
	}
	return problems, nil
}

func mapsValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// sourceColumns are the output column names (before rename) the job's
// sources can give, from the catalog's tables of the workflow's crawlers
// over the job's input: every field path flattened and snake_cased, less
// the dropped ones, and the generated timestamp columns.
func sourceColumns(ctx context.Context, wf *workflow.Workflow, job *workflow.JobSpec, spec transform.Spec, cat *catalog.Store) ([]string, []string, error) {
	local, utc := spec.TimestampColumns()
	known := []string{local, utc}
	var tables []string
	for _, src := range spec.Sources {
		var crawler *workflow.CrawlerSpec
		for _, s := range wf.Steps {
			if s.Crawler != nil && storage.SameLocation(s.Crawler.Location, job.Input) && strings.TrimSuffix(s.Crawler.Path, "/") == strings.TrimSuffix(src.Path, "/") {
				crawler = s.Crawler
			}
		}
		if crawler == nil {
			return nil, nil, fmt.Errorf("no crawler of the workflow catalogs source %s (%s)", src.Name, src.Path)
		}
		t, err := cat.GetTable(ctx, crawler.Database, crawler.Table)
		if err != nil {
			return nil, nil, fmt.Errorf("source %s: %w (run the workflow's crawlers once)", src.Name, err)
		}
		tables = append(tables, t.QualifiedName())
		for _, fp := range t.FieldPaths() {
			top, _, _ := strings.Cut(fp.Path, ".")
			if slices.Contains(spec.Drop, top) || fp.Path == spec.TimestampField {
				continue
			}
			known = append(known, column.NameOf(fp.Path))
		}
	}
	slices.Sort(known)
	return slices.Compact(known), tables, nil
}

// closest is the known name nearest to name, when it is near enough to be
// a typo (or the dotted path of a flattened field).
func closest(name string, known []string) string {
	if flat := strings.ReplaceAll(name, ".", "_"); slices.Contains(known, flat) {
		return flat
	}
	best, bestD := "", len(name)/3+1
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// plural is "1 file", "2 files".
func plural(n int, noun string) string { return api.Plural(n, noun) }
