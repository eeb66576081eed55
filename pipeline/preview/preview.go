// Package preview runs a job step's transform in process on a sample of
// its real input, for the person who develops the job: the columns it
// would write and their types, what that changes in the table's schema,
// sample rows, the quarantine with example lines, and the rows the job's
// where leaves out. It writes nothing to the table, its schema or the
// catalog: the sample and the map's intermediates stay in memory.
//
// It is the job's own map (mapper.MapShard), schema merge
// (schema.Merge) and file writer (see WriteDate), so a preview shows what
// a run would do with those lines; only deduplication is limited to the
// sample.
package preview

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"

	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/format"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

// Options bound the sample; the zero value is the default.
type Options struct {
	// Objects is how many input objects are read per source (default 3),
	// taken in turn from the received-day folders around the window.
	Objects int
	// Lines is how many lines are read per source (default 2000), shared
	// by its objects.
	Lines int
	// Examples is how many example lines are kept per quarantine reason
	// and of the filtered rows (default 3).
	Examples int
	// TempDir is where the map may spill (default: the system's).
	TempDir string
}

func (o *Options) defaults() {
	if o.Objects <= 0 {
		o.Objects = 3
	}
	if o.Lines <= 0 {
		o.Lines = 2000
	}
	if o.Examples <= 0 {
		o.Examples = 3
	}
}

// Result is what the sample became.
type Result struct {
	Window civil.Window       `json:"window"`
	Input  string             `json:"input"`
	Sample []SampledObject    `json:"sample"`
	Stats  mapper.Stats       `json:"stats"`
	Schema SchemaDiff         `json:"schema"`
	Cols   []Column           `json:"columns"`
	Quar   []QuarantineReason `json:"quarantine,omitempty"`
	Filter Filtered           `json:"filtered"`
	Notes  []string           `json:"notes,omitempty"`
	spec   transform.Spec     `json:"-"`
	man    *mapper.Manifest
	plan   column.Plan
	mem    *memstore.Bucket
}

// SampledObject is one input object the sample read from.
type SampledObject struct {
	Source string `json:"source"`
	Key    string `json:"key"`
	Lines  int    `json:"lines"` // read of it
}

// SchemaDiff is what the sample's columns would do to the table's schema.
type SchemaDiff struct {
	// Version is the table's current schema version (0: no table yet).
	Version    int                `json:"version"`
	Changes    schema.Changes     `json:"changes"`
	Collisions []column.Collision `json:"collisions,omitempty"`
	// Refused is why a run with this sample would fail to merge its
	// columns into the table's (a pin that narrows a column, a name a
	// source field already has); the rows are then shown as a new table's.
	Refused string `json:"refused,omitempty"`
}

// Column is one column the sample writes.
type Column struct {
	Name string      `json:"name"`
	Type column.Type `json:"type"`
	// Status says how the column stands against the table: new, widened
	// from T, derived, renamed from N, moved from N; empty when it is
	// the table's column as it is.
	Status string `json:"status,omitempty"`
}

// QuarantineReason is one reason lines were quarantined, with examples.
type QuarantineReason struct {
	Reason   string                    `json:"reason"`
	Count    int64                     `json:"count"`
	Examples []mapper.QuarantineRecord `json:"examples"`
}

// Filtered are the rows the job's where left out, with examples.
type Filtered struct {
	Count    int64         `json:"count"`
	Examples []FilteredRow `json:"examples,omitempty"`
}

// FilteredRow is a line the where left out.
type FilteredRow struct {
	Source string `json:"source"`
	Key    string `json:"key"`
	Line   int64  `json:"line"`
	Raw    string `json:"raw"`
}

const shardDir = "preview/"

// Run samples the job's input for the window (in), maps the sample, and
// compares its columns with the table's schema kept in the job's output
// (out; nil, or a location that cannot be read, compares with an empty
// table and says so in Notes).
func Run(ctx context.Context, in storage.Reader, out storage.Reader, spec transform.Spec, w civil.Window, opts Options) (*Result, error) {
	opts.defaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	res := &Result{Window: w, Input: in.Location(), spec: spec, mem: memstore.New()}
	objs, err := res.sample(ctx, in, opts)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("no input objects in %s for %s (received-day folders %s to %s of %s)", in.Location(), w,
			w.Start.AddDays(-1), w.End.AddDays(1), sourcePaths(spec)))
	}
	mopts := mapper.Options{TempDir: opts.TempDir, Filtered: func(l mapper.FilteredLine) {
		if len(res.Filter.Examples) < opts.Examples {
			res.Filter.Examples = append(res.Filter.Examples, FilteredRow{Source: l.Source, Key: l.Key, Line: l.Line, Raw: string(l.Raw)})
		}
	}}
	man, err := mapper.MapShard(ctx, res.mem, res.mem, shardDir, spec, w, transform.Shard{Objects: objs}, mopts)
	if err != nil {
		return nil, err
	}
	res.man, res.Stats, res.Filter.Count = man, man.Stats, man.Stats.FilteredOut
	if err := res.readQuarantine(ctx, opts.Examples); err != nil {
		return nil, err
	}
	cur := schema.Schema{}
	if out != nil {
		var ok bool
		if cur, ok, err = schema.Load(ctx, out, ""); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("the table's schema in %s could not be read (%v): compared with an empty table", out.Location(), err))
		} else if !ok {
			res.Notes = append(res.Notes, fmt.Sprintf("%s has no table yet: every column is new", out.Location()))
		}
	}
	res.Schema.Version = cur.Version
	runTypes := mapper.RunTypes(spec, []*mapper.Manifest{man})
	next, ch, coll, err := schema.Merge(cur, spec, runTypes)
	if err != nil {
		res.Schema.Refused = err.Error()
		next, ch, coll, _ = schema.Merge(schema.Schema{}, spec, runTypes)
	}
	res.Schema.Changes, res.Schema.Collisions = ch, coll
	res.plan = next.Plan(spec, coll)
	res.columns(next, runTypes)
	return res, nil
}

// sample copies the first lines of a few objects per source into memory,
// as gzip objects under their own keys, and returns them as a shard's
// objects in key order.
func (r *Result) sample(ctx context.Context, in storage.Reader, opts Options) ([]transform.Object, error) {
	lo := r.Window.Start.AddDays(-1).UTCMidnight().UnixMilli()
	hi := r.Window.End.AddDays(2).UTCMidnight().UnixMilli()
	var objs []transform.Object
	for _, src := range r.spec.Sources {
		prefix := strings.TrimSuffix(src.Path, "/") + "/"
		dirs, err := in.ListDirs(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		var folders [][]string
		for _, dir := range dirs {
			ms, err := strconv.ParseInt(path.Base(dir), 10, 64)
			if err != nil || ms < lo || ms >= hi {
				continue
			}
			keys, err := storage.ListKeys(ctx, in, dir, func(oi storage.ObjectInfo) bool { return strings.HasSuffix(oi.Key, ".gz") })
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", dir, err)
			}
			folders = append(folders, keys)
		}
		// One object of each folder in turn, so the sample spans the
		// window's days.
		var picked []string
		for i := 0; len(picked) < opts.Objects; i++ {
			more := false
			for _, keys := range folders {
				if i < len(keys) && len(picked) < opts.Objects {
					picked = append(picked, keys[i])
					more = true
				}
			}
			if !more {
				break
			}
		}
		budget := opts.Lines
		for j, key := range picked {
			share := budget / (len(picked) - j)
			n, err := r.copyLines(ctx, in, key, share)
			if err != nil {
				return nil, err
			}
			budget -= n
			r.Sample = append(r.Sample, SampledObject{Source: src.Name, Key: key, Lines: n})
			objs = append(objs, transform.Object{Source: src.Name, Key: key})
		}
	}
	slices.SortFunc(objs, func(a, b transform.Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

// copyLines copies the first n lines of a gzip object into memory,
// reading no more of the object than they need. A line the object cuts
// short, or an object that is not gzip (its first 64 KiB), is copied as it
// is read, so the map quarantines it as a run would.
func (r *Result) copyLines(ctx context.Context, in storage.Reader, key string, n int) (int, error) {
	rc, err := in.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 256<<10)
	if magic, err := br.Peek(2); err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		head, err := io.ReadAll(io.LimitReader(br, 64<<10))
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", key, err)
		}
		return 1, r.mem.Put(ctx, key, bytes.NewReader(head))
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	lines := bufio.NewReaderSize(zr, 1<<20)
	count := 0
	for count < n {
		line, err := lines.ReadBytes('\n')
		if len(line) > 0 {
			if _, err := zw.Write(line); err != nil {
				return 0, err
			}
			count++
		}
		if err != nil {
			break
		}
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return count, r.mem.Put(ctx, key, &buf)
}

func (r *Result) readQuarantine(ctx context.Context, examples int) error {
	for _, reason := range slices.Sorted(maps.Keys(r.Stats.Quarantined)) {
		r.Quar = append(r.Quar, QuarantineReason{Reason: reason, Count: r.Stats.Quarantined[reason]})
	}
	if r.man.Quarantine == "" {
		return nil
	}
	rc, err := r.mem.Get(ctx, shardDir+r.man.Quarantine)
	if err != nil {
		return err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(zr)
	for {
		var rec mapper.QuarantineRecord
		if err := dec.Decode(&rec); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read the quarantine: %w", err)
		}
		for i := range r.Quar {
			if q := &r.Quar[i]; q.Reason == rec.Reason && len(q.Examples) < examples {
				q.Examples = append(q.Examples, rec)
			}
		}
	}
}

// columns lists the columns the sample writes, in the table's order,
// with how each stands against the table.
func (r *Result) columns(next schema.Schema, runTypes map[string]column.Type) {
	written := map[string]bool{}
	local, utc := r.spec.TimestampColumns()
	written[local], written[utc] = true, true
	for p := range runTypes {
		written[r.plan.Names[p]] = true
	}
	status := map[string]string{}
	if r.Schema.Version > 0 {
		for _, n := range r.Schema.Changes.Added {
			status[n] = "new"
		}
	}
	for _, wd := range r.Schema.Changes.Widened {
		status[wd.Column] = "widened from " + wd.From.String()
	}
	for _, c := range next.Columns {
		for _, p := range c.Paths {
			if n, ok := column.IsDerivedPath(p); ok && n == c.Name {
				status[c.Name] = strings.TrimSpace(status[c.Name] + " derived")
			} else if c.Renamed {
				status[c.Name] = strings.TrimSpace(status[c.Name] + " renamed from " + column.NameOf(p))
			}
		}
	}
	for _, c := range next.Columns {
		if written[c.Name] {
			r.Cols = append(r.Cols, Column{Name: c.Name, Type: c.Type, Status: status[c.Name]})
		}
	}
}

// Dates are the window's dates the sample has rows of.
func (r *Result) Dates() []civil.Date {
	var out []civil.Date
	for _, df := range r.man.Dates {
		out = append(out, df.Date)
	}
	return out
}

// WriteDate writes date d's sample rows as the job writes a partition's
// file (deduplicated within the sample, sorted), in the file format
// called formatName (pipeline/format/formats) with the job's other
// settings, its compression the format's default when the job's is not
// one the format takes (and always for CSV, which a reader wants plain). With all, every column of the
// table is written, so the files of several dates line up.
//
// It is the one place the preview calls the reduce: one slice of every
// virtual bucket, one column group, encoded as one fragment, which for so
// few rows is a whole file.
func (r *Result) WriteDate(ctx context.Context, w io.Writer, formatName string, d civil.Date, all bool) (int64, error) {
	spec := r.spec
	spec.Format = formatName
	ff, err := spec.FileFormat()
	if err != nil {
		return 0, err
	}
	if ff.Positional() || !slices.Contains(ff.Compressions(), spec.Compression) || spec.Format != r.spec.Format && spec.Compression == "none" {
		spec.Compression = ff.Compressions()[0]
	}
	cols := mapper.DateColumns(spec, r.plan, []*mapper.Manifest{r.man}, d)
	if all {
		cols = r.plan.TableColumns()
	}
	in := reduce.SliceInput{Date: d, Lo: 0, Hi: intermediate.VBuckets, Codec: r.man.Codec, Columns: cols, Groups: []int{0}}
	for _, df := range r.man.Dates {
		if df.Date == d {
			in.Shards = append(in.Shards, reduce.ShardRows{Key: shardDir + df.RowsFile, ColMap: mapper.ColMap(r.plan, cols, r.man), Index: df.RowsIndex.Slice(0, intermediate.VBuckets)})
		} else {
			in.Others = append(in.Others, reduce.ShardIDs{Key: shardDir + df.IDsFile, Index: df.IDsIndex.Slice(0, intermediate.VBuckets)})
		}
	}
	if len(in.Shards) == 0 {
		return 0, fmt.Errorf("the sample has no rows of %s", d)
	}
	var run bytes.Buffer
	st, err := reduce.Slice(ctx, reduce.IO{Scratch: r.mem, Runs: []io.Writer{&run}}, spec, in, reduce.Options{})
	if err != nil {
		return 0, err
	}
	runKey := shardDir + "run-" + d.String()
	size := int64(run.Len())
	if err := r.mem.Put(ctx, runKey, &run); err != nil {
		return 0, err
	}
	defer func() { _ = r.mem.Delete(ctx, runKey) }() // memory: it cannot fail
	fs, err := reduce.EncodeFragment(ctx, r.mem, spec, reduce.FragmentInput{
		Date: d, Codec: in.Codec, Runs: []reduce.RunRef{{Key: runKey, Size: size}},
		Fragment: format.Fragment{Columns: cols, From: 0, To: len(cols), Rows: st.Rows, Values: st.Values, StringBytes: st.StringBytes, Header: true},
	}, w)
	return fs.Rows, err
}

func sourcePaths(spec transform.Spec) string {
	var ps []string
	for _, s := range spec.Sources {
		ps = append(ps, s.Path)
	}
	return strings.Join(ps, ", ")
}
