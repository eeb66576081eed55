package crawl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/catalog"
	"sluice/pipeline/storage"
)

// Target is one crawler target: a path in a bucket that holds one table.
type Target struct {
	Database    string
	TablePrefix string // prepended to the derived table name, e.g. "raw_"
	TableName   string // explicit table name; overrides the derived one
	Path        string // prefix inside the source bucket, e.g. "segment-logs/ios/", or "" for the root
	Location    string // URL of Path for the catalog, e.g. s3://bucket/segment-logs/ios/
}

// Options tune a crawl. Zero values take the defaults.
type Options struct {
	SampleFilesPerFolder int // default 2
	SampleRecordsPerFile int // default 1000
	Concurrency          int // parallel listings and file reads, default 8
}

func (o Options) withDefaults() Options {
	if o.SampleFilesPerFolder <= 0 {
		o.SampleFilesPerFolder = 2
	}
	if o.SampleRecordsPerFile <= 0 {
		o.SampleRecordsPerFile = 1000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	return o
}

// Result reports what a crawl found and changed.
type Result struct {
	Tables          []string // "db.table" touched (created or updated)
	TableVersion    int      // version of the table after the crawl
	PartitionsAdded int      // partitions that did not exist before
	PartitionsSeen  int
	PartitionsGone  int      // catalogued partitions no longer listed, now marked Missing
	ColumnsAdded    []string // top-level columns new to the table
	Conflicts       []catalog.Conflict
	ObjectsListed   int
	FilesSampled    int
	BytesSampled    int64
	RecordsSampled  int
	Skipped         []Skipped // files left out of the schema, and why
}

// Skipped is a file the crawl could not use for the schema.
type Skipped struct {
	Key    string
	Reason string
}

// ErrNoData is returned when the target holds no data files at all.
var ErrNoData = errors.New("no data files")

// TableName is the table a target crawls into: Target.TableName, or
// TablePrefix plus the last segment of Path (or of Location), sanitised.
func TableName(t Target) (string, error) {
	if t.TableName != "" {
		return sanitize(t.TableName), nil
	}
	last := path.Base(strings.Trim(t.Path, "/"))
	if last == "." || last == "/" || last == "" {
		loc := t.Location
		if _, rest, ok := strings.Cut(loc, "://"); ok {
			loc = rest
		}
		last = path.Base(strings.Trim(loc, "/"))
	}
	if last == "" || last == "/" || last == "." {
		return "", fmt.Errorf("target %q: cannot derive a table name, set TableName", t.Path)
	}
	return sanitize(t.TablePrefix + last), nil
}

// Crawl lists the target, infers its schema and partitions, and writes them
// to store. Problems with single files are reported in Result.Skipped;
// errors are returned only when listing, reading or the catalog fail.
func Crawl(ctx context.Context, src storage.Reader, target Target, store *catalog.Store, opts Options, log *slog.Logger) (Result, error) {
	opts = opts.withDefaults()
	var res Result
	name, err := TableName(target)
	if err != nil {
		return res, err
	}
	db := sanitize(target.Database)
	prefix := target.Path
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	log = log.With("db", db, "table", name, "path", prefix)

	objs, listed, err := listObjects(ctx, src, prefix, opts.Concurrency)
	res.ObjectsListed = listed
	if err != nil {
		return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}
	lay := detectLayout(objs)
	for _, o := range lay.skipped {
		res.Skipped = append(res.Skipped, Skipped{o.Key, "unexpected folder depth"})
	}
	if len(lay.partitions) == 0 {
		return res, fmt.Errorf("crawl %s.%s: %q: %w", db, name, prefix, ErrNoData)
	}

	samples, picked, err := sampleAll(ctx, src, lay, opts)
	if err != nil {
		return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}

	// Merge the samples in key order, so "first seen" field order and the
	// result do not depend on which read finished first.
	schema := unknownType
	var cs conflicts
	formats, comps := map[string]int{}, map[string]int{}
	for i, s := range samples {
		res.FilesSampled++
		res.BytesSampled += s.bytesRead
		res.RecordsSampled += s.records
		if s.unreadable != "" && s.unreadable != "empty" {
			res.Skipped = append(res.Skipped, Skipped{picked[i].Key, s.unreadable})
			continue
		}
		if s.format == "" {
			continue
		}
		formats[s.format]++
		comps[s.compression]++
		cs.merge(s.conflicts)
		if s.schema.Kind == catalog.KindStruct {
			schema = merge("", picked[i].Key, schema, s.schema, &cs)
		}
	}
	if len(formats) == 0 {
		return res, fmt.Errorf("crawl %s.%s: %q: no readable data files: %w", db, name, prefix, ErrNoData)
	}
	tableFormat, compression := majority(formats), majority(comps)

	if err := ensureDatabase(ctx, store, db); err != nil {
		return res, err
	}
	var added []string
	tbl, changed, err := store.UpdateTable(ctx, db, name, func(t *catalog.Table) error {
		added = added[:0]
		found := catalog.StructOf()
		if schema.Kind == catalog.KindStruct {
			found = finalize(schema)
		}
		merged := finalize(merge("", target.Location, catalog.StructOf(t.Columns...), found, &cs))
		for _, c := range merged.Fields {
			if _, ok := t.Column(c.Name); !ok {
				added = append(added, c.Name)
			}
		}
		t.Columns = merged.Fields
		t.PartitionKeys = lay.keys
		t.Location = target.Location
		t.Format = tableFormat
		t.Compression = compression
		t.Conflicts = mergeConflicts(t.Conflicts, cs.list)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}
	res.Tables = []string{tbl.QualifiedName()}
	res.TableVersion = tbl.Version
	res.ColumnsAdded = added
	res.Conflicts = cs.list

	parts, err := partitionsFor(ctx, store, db, name, target.Location, lay, samples, picked)
	if err != nil {
		return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}
	res.PartitionsSeen = len(lay.partitions)
	for _, p := range parts {
		if p.Missing {
			res.PartitionsGone++
		}
	}
	n, err := store.AddPartitions(ctx, db, name, parts)
	res.PartitionsAdded = n
	if err != nil {
		return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}
	log.Info("crawled", "version", tbl.Version, "schema_changed", changed, "columns_added", len(added),
		"partitions", len(lay.partitions), "partitions_added", n, "conflicts", len(cs.list),
		"objects", listed, "sampled", res.FilesSampled, "skipped", len(res.Skipped))
	return res, nil
}

// sampleAll picks up to SampleFilesPerFolder files per partition, spread
// over the folder, and reads them in parallel. Results are in pick order.
func sampleAll(ctx context.Context, src storage.Reader, lay layout, opts Options) ([]sample, []object, error) {
	var picked []object
	for _, p := range lay.partitions {
		picked = append(picked, spread(p.files, opts.SampleFilesPerFolder)...)
	}
	samples := make([]sample, len(picked))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for i, o := range picked {
		g.Go(func() error {
			s, err := sampleFile(gctx, src, o, opts)
			samples[i] = s
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return samples, picked, nil
}

// spread returns n files evenly spaced through files (all when fewer).
func spread(files []object, n int) []object {
	if len(files) <= n {
		return files
	}
	out := make([]object, 0, n)
	for i := range n {
		out = append(out, files[i*(len(files)-1)/max(n-1, 1)])
	}
	return out
}

func majority(counts map[string]int) string {
	best, bestN := "", -1
	for k, n := range counts {
		if n > bestN || n == bestN && k < best {
			best, bestN = k, n
		}
	}
	return best
}

func ensureDatabase(ctx context.Context, store *catalog.Store, db string) error {
	_, err := store.GetDatabase(ctx, db)
	if errors.Is(err, catalog.ErrNotFound) {
		err = store.PutDatabase(ctx, catalog.Database{Name: db})
	}
	if err != nil {
		return fmt.Errorf("database %s: %w", db, err)
	}
	return nil
}

// mergeConflicts keeps earlier crawls' conflicts and adds or refreshes the
// ones seen now, by path.
func mergeConflicts(old, now []catalog.Conflict) []catalog.Conflict {
	out := slices.Clone(old)
	for _, c := range now {
		i := slices.IndexFunc(out, func(o catalog.Conflict) bool { return o.Path == c.Path })
		if i < 0 {
			out = append(out, c)
			continue
		}
		for _, t := range c.Types {
			if !slices.Contains(out[i].Types, t) {
				out[i].Types = append(out[i].Types, t)
			}
		}
		out[i].Resolved = c.Resolved
		out[i].Widened = out[i].Widened && c.Widened
	}
	return out
}

// partitionsFor builds the partition documents: one per listed folder, plus
// previously catalogued partitions that are gone, marked Missing.
func partitionsFor(ctx context.Context, store *catalog.Store, db, table, location string, lay layout, samples []sample, picked []object) ([]catalog.Partition, error) {
	rows := map[string]int64{} // key -> parquet rows
	for i, s := range samples {
		if s.format == formatParquet && s.unreadable == "" {
			rows[picked[i].Key] = s.rows
		}
	}
	base := strings.TrimRight(location, "/") + "/"
	var out []catalog.Partition
	seen := map[string]bool{}
	for _, p := range lay.partitions {
		cp := catalog.Partition{Values: p.values, Location: base}
		if p.dir != "" {
			cp.Location = base + p.dir + "/"
		}
		allRows := true
		for _, f := range p.files {
			cp.Files++
			cp.Bytes += f.Size
			r, ok := rows[f.Key]
			allRows = allRows && ok
			cp.Rows += r
		}
		if !allRows {
			cp.Rows = 0
		}
		seen[strings.Join(p.values, "\x00")] = true
		out = append(out, cp)
	}
	old, err := store.ListPartitions(ctx, db, table)
	if err != nil {
		return nil, err
	}
	for _, p := range old {
		if !seen[strings.Join(p.Values, "\x00")] && len(p.Values) == len(lay.keys) && !p.Missing {
			p.Missing = true
			out = append(out, p)
		}
	}
	return out, nil
}
