package crawl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/catalog"
	"sluice/pipeline/column"
	tableschema "sluice/pipeline/schema"
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

// Recrawl policies (Options.Recrawl), named as in the workflow YAML.
const (
	// RecrawlNewFolders reads only partition folders that are new, or whose
	// listing (keys, sizes, ETags) changed, since the last crawl.
	RecrawlNewFolders = "new_folders"
	// RecrawlEverything samples every folder again, as a first crawl does.
	RecrawlEverything = "everything"
)

// Schema change policies (Options.SchemaChange), named as in the workflow
// YAML. A table's first crawl always creates it.
const (
	// SchemaUpdate writes the change: new columns are appended at the end,
	// existing columns keep their place and are only widened.
	SchemaUpdate = "update"
	// SchemaLog leaves the table's columns as they are, logs the change and
	// lists it in Result.SchemaChangesLogged; partitions are still added.
	SchemaLog = "log"
	// SchemaFail fails the crawl with ErrSchemaChange before anything is
	// written.
	SchemaFail = "fail"
)

// ErrSchemaChange is returned (wrapped) under SchemaFail when the data no
// longer fits the catalogued table.
var ErrSchemaChange = errors.New("schema changed")

// Options tune a crawl. Zero values take the defaults.
type Options struct {
	SampleFilesPerFolder int    // default 2
	SampleRecordsPerFile int    // default 1000
	Concurrency          int    // parallel listings and file reads, default 8
	Recrawl              string // RecrawlNewFolders (default) or RecrawlEverything
	SchemaChange         string // SchemaUpdate (default), SchemaLog or SchemaFail
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
	if o.Recrawl == "" {
		o.Recrawl = RecrawlNewFolders
	}
	if o.SchemaChange == "" {
		o.SchemaChange = SchemaUpdate
	}
	return o
}

// Validate reports an unknown policy name.
func (o Options) Validate() error {
	switch o.Recrawl {
	case "", RecrawlNewFolders, RecrawlEverything:
	default:
		return fmt.Errorf("recrawl: must be %s or %s, got %q", RecrawlNewFolders, RecrawlEverything, o.Recrawl)
	}
	switch o.SchemaChange {
	case "", SchemaUpdate, SchemaLog, SchemaFail:
	default:
		return fmt.Errorf("schema_change: must be %s, %s or %s, got %q", SchemaUpdate, SchemaLog, SchemaFail, o.SchemaChange)
	}
	return nil
}

// maxListed bounds the conflicts and skipped files a Result lists, so a
// folder of ten thousand unreadable files does not bloat the run record.
const maxListed = 20

// Result reports what a crawl found and changed. It is stored as the
// crawler step's summary in the run record, so its JSON is compact.
type Result struct {
	Tables       []string `json:"tables"`        // "db.table" created or changed (schema or partitions)
	TableVersion int      `json:"table_version"` // version of the table after the crawl
	Recrawl      string   `json:"recrawl"`       // the policy used
	// New partitions, partitions whose folder changed, all listed, and
	// catalogued ones whose folder is gone (now marked missing).
	PartitionsAdded   int `json:"partitions_added"`
	PartitionsUpdated int `json:"partitions_updated"`
	PartitionsSeen    int `json:"partitions_seen"`
	PartitionsGone    int `json:"partitions_missing"`
	FoldersSampled    int `json:"folders_sampled"` // folders read this crawl (new or changed)
	// ColumnsAdded are top-level columns new to the table; ColumnsChanged
	// are existing ones whose type was widened or gained struct fields,
	// as "name: old -> new".
	ColumnsAdded   []string `json:"columns_added,omitempty"`
	ColumnsChanged []string `json:"columns_changed,omitempty"`
	// SchemaChangesLogged lists changes seen but not applied (SchemaLog).
	SchemaChangesLogged []string           `json:"schema_changes_logged,omitempty"`
	ConflictCount       int                `json:"conflict_count"`
	Conflicts           []catalog.Conflict `json:"conflicts,omitempty"` // the first maxListed
	ObjectsListed       int                `json:"objects_listed"`
	FilesSampled        int                `json:"files_sampled"`
	BytesSampled        int64              `json:"bytes_sampled"`
	RecordsSampled      int                `json:"records_sampled"`
	SkippedCount        int                `json:"skipped_count"`
	Skipped             []Skipped          `json:"skipped,omitempty"` // the first maxListed
	// Warning says what looks wrong although the crawl succeeded: a
	// target that holds no data files (a missing or mistyped folder).
	Warning string `json:"warning,omitempty"`

	allConflicts []catalog.Conflict
	allSkipped   []Skipped
}

// AllSkipped returns every skipped file (Skipped holds the first few).
func (r Result) AllSkipped() []Skipped { return r.allSkipped }

func (r *Result) skip(key, reason string) {
	r.allSkipped = append(r.allSkipped, Skipped{key, reason})
}

// seal fills the capped lists and counts from the full ones.
func (r *Result) seal() {
	r.ConflictCount, r.SkippedCount = len(r.allConflicts), len(r.allSkipped)
	r.Conflicts = r.allConflicts[:min(len(r.allConflicts), maxListed)]
	r.Skipped = r.allSkipped[:min(len(r.allSkipped), maxListed)]
}

// Skipped is a file the crawl could not use for the schema.
type Skipped struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// ErrNoData is returned when the target holds no data files at all.
var ErrNoData = errors.New("no data files")

// TableName is the table a target crawls into: Target.TableName, or
// TablePrefix plus the last segment of Path (or of Location), sanitised.
func TableName(t Target) (string, error) {
	if t.TableName != "" {
		return catalog.HiveName(t.TableName), nil
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
	return catalog.HiveName(t.TablePrefix + last), nil
}

// Crawl lists the target, infers its schema and partitions, and writes them
// to store. Problems with single files are reported in Result.Skipped;
// errors are returned only when listing, reading or the catalog fail, or
// (SchemaFail) when the schema changed.
//
// Every crawl lists the whole target (listing is cheap: one request per
// thousand objects), but under RecrawlNewFolders it reads only the folders
// whose listing fingerprint differs from the one stored with the
// partition, so its reads are proportional to the new data.
func Crawl(ctx context.Context, src storage.Reader, target Target, store *catalog.Store, opts Options, log *slog.Logger) (res Result, err error) {
	if err := opts.Validate(); err != nil {
		return res, err
	}
	opts = opts.withDefaults()
	res.Recrawl = opts.Recrawl
	defer res.seal()
	name, err := TableName(target)
	if err != nil {
		return res, err
	}
	db := catalog.HiveName(target.Database)
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
		res.skip(o.Key, "unexpected folder depth")
	}
	lay.partitions = dataFilesOnly(lay.partitions, &res)

	old, err := store.GetTable(ctx, db, name)
	exists := err == nil
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}
	if len(lay.partitions) == 0 && !exists {
		return res, fmt.Errorf("crawl %s.%s: %q: %w", db, name, prefix, ErrNoData)
	}
	oldParts, err := store.ListPartitions(ctx, db, name)
	if err != nil {
		return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}
	if len(lay.partitions) == 0 {
		// A table whose data is all gone (a job emptied its partitions on
		// purpose): keep the table and its schema, mark every partition
		// missing, as a folder that disappears is.
		return res, markAllMissing(ctx, store, db, name, old, oldParts, &res, log)
	}
	known := make(map[string]catalog.Partition, len(oldParts))
	for _, p := range oldParts {
		known[valuesKey(p.Values)] = p
	}

	// Which folders to read: all of them on a first or full crawl, else
	// the new and changed ones.
	var todo []*partition
	for _, p := range lay.partitions {
		p.fingerprint = fingerprint(p.files)
		k, ok := known[valuesKey(p.values)]
		if !exists || opts.Recrawl == RecrawlEverything || !ok || k.Missing || k.Fingerprint != p.fingerprint {
			todo = append(todo, p)
		}
	}
	res.FoldersSampled = len(todo)
	samples, picked, err := sampleAll(ctx, src, todo, opts)
	if err != nil {
		return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}

	// Merge the samples in key order, so "first seen" field order and the
	// result do not depend on which read finished first.
	schema := unknownType
	var cs conflicts
	formats, comps := map[string]int{}, map[string]int{}
	headers := 0
	for i, s := range samples {
		res.FilesSampled++
		res.BytesSampled += s.bytesRead
		res.RecordsSampled += s.records
		if s.unreadable != "" && s.unreadable != "empty" {
			res.skip(picked[i].Key, s.unreadable)
			continue
		}
		if s.format == "" {
			continue
		}
		formats[s.format]++
		comps[s.compression]++
		if s.header {
			headers++
		}
		cs.merge(s.conflicts)
		if s.schema.Kind == catalog.KindStruct {
			schema = merge("", picked[i].Key, schema, s.schema, &cs)
		}
	}
	var declared *catalog.Type
	if len(todo) > 0 || !exists { // else the table stays as it is: read nothing
		if declared, err = declaredSchema(ctx, src, prefix); err != nil {
			return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
		}
	}
	if declared != nil {
		// A table a Sluice job writes declares its schema, which every
		// file agrees with: take it as it is (types and, for CSV, the
		// column order) rather than what the sampled files suggest.
		schema, cs = *declared, conflicts{}
	}
	if len(formats) == 0 && (!exists || len(todo) == len(lay.partitions)) {
		return res, fmt.Errorf("crawl %s.%s: %q: no readable data files: %w", db, name, prefix, ErrNoData)
	}
	parts := partitionsFor(target.Location, lay, samples, picked, known)
	tableChanged := false
	if len(formats) > 0 || !exists || !slices.EqualFunc(old.PartitionKeys, lay.keys, sameColumn) {
		if err := ensureDatabase(ctx, store, db); err != nil {
			return res, err
		}
		var tbl catalog.Table
		tbl, tableChanged, err = updateTable(ctx, store, db, name, target, lay, schema, &cs, formats, comps, headers, opts, &res, log)
		if err != nil {
			return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
		}
		res.TableVersion = tbl.Version
	} else {
		res.TableVersion = old.Version
	}
	res.allConflicts = cs.list

	res.PartitionsSeen = len(lay.partitions)
	var write []catalog.Partition
	for _, p := range parts {
		prev, had := known[valuesKey(p.Values)]
		switch {
		case p.Missing:
			res.PartitionsGone++
		case !had:
			res.PartitionsAdded++
		case !prev.Same(p):
			res.PartitionsUpdated++
		default:
			continue
		}
		write = append(write, p)
	}
	if _, err := store.AddPartitions(ctx, db, name, write); err != nil {
		return res, fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}
	if tableChanged || len(write) > 0 {
		res.Tables = []string{db + "." + name}
	}
	log.Info("crawled", "version", res.TableVersion, "schema_changed", tableChanged, "columns_added", len(res.ColumnsAdded),
		"partitions", len(lay.partitions), "partitions_added", res.PartitionsAdded, "partitions_updated", res.PartitionsUpdated,
		"partitions_missing", res.PartitionsGone, "folders_sampled", res.FoldersSampled, "conflicts", len(cs.list),
		"objects", listed, "sampled", res.FilesSampled, "skipped", len(res.allSkipped))
	return res, nil
}

func markAllMissing(ctx context.Context, store *catalog.Store, db, name string, old catalog.Table, parts []catalog.Partition, res *Result, log *slog.Logger) error {
	var write []catalog.Partition
	for _, p := range parts {
		if !p.Missing {
			p.Missing = true
			write = append(write, p)
		}
	}
	if _, err := store.AddPartitions(ctx, db, name, write); err != nil {
		return fmt.Errorf("crawl %s.%s: %w", db, name, err)
	}
	res.TableVersion, res.PartitionsGone = old.Version, len(write)
	if len(write) > 0 {
		res.Tables = []string{db + "." + name}
	}
	res.Warning = fmt.Sprintf("%s holds no data files (%d objects listed): every partition of %s.%s is marked missing; check the crawler's location and path",
		old.Location, res.ObjectsListed, db, name)
	log.Warn("crawled an empty target: every partition is missing", "version", old.Version, "partitions_missing", len(write), "location", old.Location)
	return nil
}

// dataFilesOnly drops files whose name says they are not data (README.txt,
// logo.png) from the partitions, reporting them as skipped, and drops
// folders left with no data files: they are not partitions, and sampling
// never wastes a read on them.
func dataFilesOnly(parts []*partition, res *Result) []*partition {
	out := parts[:0]
	for _, p := range parts {
		files := p.files[:0]
		for _, f := range p.files {
			if format, _ := classify(f.Key); format == "" {
				res.skip(f.Key, "unknown format")
				continue
			}
			files = append(files, f)
		}
		p.files = files
		if len(files) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// updateTable merges what the crawl found into the table under the schema
// change policy.
func updateTable(ctx context.Context, store *catalog.Store, db, name string, target Target, lay layout, schema catalog.Type,
	cs *conflicts, formats, comps map[string]int, headers int, opts Options, res *Result, log *slog.Logger) (catalog.Table, bool, error) {
	return store.UpdateTable(ctx, db, name, func(t *catalog.Table) error {
		// UpdateTable may call this more than once (a concurrent writer won):
		// start from scratch each time.
		res.ColumnsAdded, res.ColumnsChanged, res.SchemaChangesLogged = nil, nil, nil
		var tcs conflicts
		tcs.merge(cs.list)
		found := catalog.StructOf()
		if schema.Kind == catalog.KindStruct {
			found = finalize(schema)
		}
		merged := finalize(merge("", target.Location, catalog.StructOf(t.Columns...), found, &tcs))
		added, changed := diffColumns(t.Columns, merged.Fields)
		firstCrawl := t.Version == 0
		if !firstCrawl && len(added)+len(changed) > 0 {
			switch opts.SchemaChange {
			case SchemaFail:
				return fmt.Errorf("%w (schema_change: fail): columns added %v, changed %v; "+
					"set schema_change to update or log, or fix the data", ErrSchemaChange, added, changed)
			case SchemaLog:
				res.SchemaChangesLogged = append(prefixAll("added ", added), prefixAll("changed ", changed)...)
				log.Warn("schema change not applied (schema_change: log)", "added", added, "changed", changed)
				merged.Fields = t.Columns
				added, changed = nil, nil
			}
		}
		res.ColumnsAdded, res.ColumnsChanged = added, changed
		t.Columns = merged.Fields
		t.PartitionKeys = lay.keys
		t.Location = target.Location
		if len(formats) > 0 {
			t.Format = majority(formats)
			t.Compression = majority(comps)
			if t.Format == formatCSV {
				// Most sampled CSV files start with a header row.
				if t.Properties == nil {
					t.Properties = map[string]string{}
				}
				delete(t.Properties, "skip.header.line.count")
				if 2*headers > formats[formatCSV] {
					t.Properties["skip.header.line.count"] = "1"
				}
			}
		}
		t.Conflicts = mergeConflicts(t.Conflicts, tcs.list)
		*cs = tcs
		return nil
	})
}

// declaredSchema is the schema a Sluice job declares for the table below
// prefix (pipeline/schema), as a catalog struct, or nil when there is none.
func declaredSchema(ctx context.Context, src storage.Reader, prefix string) (*catalog.Type, error) {
	sc, ok, err := tableschema.Load(ctx, src, prefix)
	if err != nil || !ok {
		return nil, err
	}
	t := catalog.StructOf()
	for _, c := range sc.Columns {
		t.Fields = append(t.Fields, catalog.Column{Name: c.Name, Type: catalog.Prim(catalogKind(c.Type))})
	}
	return &t, nil
}

// catalogKind is the catalog type of a job's column type.
func catalogKind(t column.Type) catalog.Kind {
	switch t {
	case column.TypeBool:
		return catalog.KindBoolean
	case column.TypeBigint:
		return catalog.KindBigint
	case column.TypeDouble:
		return catalog.KindDouble
	case column.TypeLocalTime, column.TypeUTCTime:
		return catalog.KindTimestamp
	}
	return catalog.KindString
}

// diffColumns names the columns of now that are not in old, and those whose
// type differs, as "name: old -> new".
func diffColumns(old, now []catalog.Column) (added, changed []string) {
	for _, c := range now {
		i := slices.IndexFunc(old, func(o catalog.Column) bool { return o.Name == c.Name })
		switch {
		case i < 0:
			added = append(added, c.Name)
		case !old[i].Type.Equal(c.Type):
			changed = append(changed, fmt.Sprintf("%s: %s -> %s", c.Name, old[i].Type, c.Type))
		}
	}
	return added, changed
}

func prefixAll(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

func sameColumn(a, b catalog.Column) bool { return a.Name == b.Name && a.Type.Equal(b.Type) }

func valuesKey(v []string) string { return strings.Join(v, "\x00") }

// fingerprint hashes a folder's listing: any added, removed or rewritten
// file changes it.
func fingerprint(files []object) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", f.rel, f.Size, f.ETag)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// sampleAll picks up to SampleFilesPerFolder files per partition, spread
// over the folder, and reads them in parallel. Results are in pick order.
func sampleAll(ctx context.Context, src storage.Reader, todo []*partition, opts Options) ([]sample, []object, error) {
	var picked []object
	for _, p := range todo {
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
// previously catalogued partitions that are gone, marked Missing. A folder
// that was not read this crawl keeps its stored row count.
func partitionsFor(location string, lay layout, samples []sample, picked []object, known map[string]catalog.Partition) []catalog.Partition {
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
		k := valuesKey(p.values)
		cp := catalog.Partition{Values: p.values, Location: base, Fingerprint: p.fingerprint}
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
			if prev, ok := known[k]; ok && prev.Fingerprint == cp.Fingerprint {
				cp.Rows = prev.Rows
			}
		}
		seen[k] = true
		out = append(out, cp)
	}
	for k, p := range known {
		if !seen[k] && len(p.Values) == len(lay.keys) && !p.Missing {
			p.Missing = true
			out = append(out, p)
		}
	}
	return out
}
