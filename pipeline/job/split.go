package job

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/fault"
	"sluice/pipeline/format"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// ShrinkRatio is the shrink guard's threshold: a rebuild that reads fewer
// rows (before deduplication) than this share of what the partition's last
// build read is refused unless the run allows it. Late data only ever adds
// rows, so a real shrink means input went missing: a wrong location or
// prefix, an emptied bucket, or raw logs deleted by a retention rule.
const ShrinkRatio = 0.5

// split is what the split phase decided, kept in scratch and written
// last: its presence means every reduce input exists.
type split struct {
	Dates []dateSplit `json:"dates"`
	// Map sums the statistics of every shard.
	Map        mapper.Stats       `json:"map"`
	Collisions []column.Collision `json:"collisions,omitempty"`
	// Quarantines are the shards that quarantined lines, by shard number.
	Quarantines []int `json:"quarantines,omitempty"`
	// Reduces and Encodes are the reduce and encode tasks over all dates.
	Reduces int `json:"reduces"`
	Encodes int `json:"encodes"`
	// Schema is the table schema's version the run writes with, and
	// SchemaChanges what the run changed in it.
	Schema        int            `json:"schema"`
	SchemaChanges schema.Changes `json:"schema_changes"`
	// Converts are published partitions outside the rebuild whose files
	// are rewritten to the schema's types (one encode task per file);
	// ConvertedThrough is the version that leaves every file at, 0 when
	// some partition was deferred (see planConversions).
	Converts         []dateSplit `json:"converts,omitempty"`
	Deferred         []string    `json:"deferred,omitempty"`
	ConvertedThrough int         `json:"converted_through,omitempty"`
}

// commits is how many partitions the step commits.
func (sp *split) commits() int { return len(sp.Dates) + len(sp.Converts) }

// dateSplit is one date's split into files, row groups, slices and column
// groups (see splitDate).
type dateSplit struct {
	Date     civil.Date `json:"date"`
	Rows     int64      `json:"rows"`  // rows mapped, before deduplication
	Bytes    int64      `json:"bytes"` // their row records' bytes
	Estimate int64      `json:"estimate_bytes"`
	Files    int        `json:"files"`
	// Columns are the date's columns in file order, and Groups the first
	// column of each column group.
	Columns []column.Column `json:"columns,omitempty"`
	Groups  []int           `json:"groups,omitempty"`
	// RowGroups are every row group of the date, file by file, and
	// SliceRanges the virtual buckets of each slice, in order.
	RowGroups   []rowGroupSplit `json:"row_groups,omitempty"`
	SliceRanges [][2]int        `json:"slice_ranges,omitempty"`
	Slices      int             `json:"slices"`
	// Convert marks a schema conversion: ConvertFiles are the published
	// files it rewrites, one encode task each.
	Convert      bool                 `json:"convert,omitempty"`
	ConvertFiles []storage.ObjectInfo `json:"convert_files,omitempty"`
}

// rowGroupSplit is one row group: which file it is in, its virtual
// buckets and the slices (reduce tasks) that cover them.
type rowGroupSplit struct {
	File   int    `json:"file"`
	Lo     int    `json:"lo"`
	Hi     int    `json:"hi"`
	Bytes  int64  `json:"bytes"`  // of row records
	Slices [2]int `json:"slices"` // [first, end)
}

// fragments is the number of encode tasks of the date: one per row group
// and column group, or one per converted file.
func (ds dateSplit) fragments() int {
	if ds.Convert {
		return len(ds.ConvertFiles)
	}
	return len(ds.RowGroups) * len(ds.Groups)
}

// rowGroupOfSlice is the row group slice i belongs to.
func (ds dateSplit) rowGroupOfSlice(i int) int {
	for g, rg := range ds.RowGroups {
		if i >= rg.Slices[0] && i < rg.Slices[1] {
			return g
		}
	}
	return -1
}

func (sp *split) date(d civil.Date) (dateSplit, bool) {
	for _, ds := range slices.Concat(sp.Dates, sp.Converts) {
		if ds.Date == d {
			return ds, true
		}
	}
	return dateSplit{}, false
}

// sliceDoc is a reduce task's input in scratch.
type sliceDoc struct {
	Input reduce.SliceInput `json:"input"`
	// Reduces counts the step's reduce tasks, for progress.
	Reduces int `json:"reduces"`
}

// Split reads every shard's manifest, refuses a rebuild that would shrink
// published partitions (see ShrinkRatio), splits each date into files,
// row groups, slices and column groups (splitDate), and writes one reduce
// input per slice. Dates without rows are ready to commit at once (their
// partitions are emptied); a schema conversion's files go straight to
// their encode tasks.
func (s *Step) Split(ctx context.Context, shards int) (Next, error) {
	var p plan
	if err := storage.ReadJSON(ctx, s.Scratch, s.planKey(), &p); err != nil {
		return Next{}, err
	}
	var sp split
	err := storage.ReadJSON(ctx, s.Scratch, s.splitKey(), &sp)
	if errors.Is(err, storage.ErrNotExist) {
		if sp, err = s.bucket(ctx, p, shards); err != nil {
			return Next{}, err
		}
	} else if err != nil {
		return Next{}, err
	}
	if sp.commits() == 0 {
		// Nothing to write: a run that only came to convert and found
		// nothing left to do.
		sum, err := s.finish(ctx, &sp)
		return Next{Done: sum}, err
	}
	next := Next{CommitTotal: sp.commits()}
	for _, ds := range sp.Dates {
		if ds.Slices == 0 {
			next.Commits = append(next.Commits, ds.Date)
		}
		for i := range ds.Slices {
			next.Reduces = append(next.Reduces, ReduceTask{Date: ds.Date, Slice: i})
		}
	}
	for _, ds := range sp.Converts {
		for f := range ds.fragments() {
			next.Encodes = append(next.Encodes, EncodeTask{Date: ds.Date, Fragment: f, Fragments: ds.fragments()})
		}
	}
	s.progress(ctx, "reduce 0/%d slices", sp.Reduces)
	return next, nil
}

func (s *Step) bucket(ctx context.Context, p plan, shards int) (split, error) {
	mans, err := s.manifests(ctx, shards)
	if err != nil {
		return split{}, err
	}
	sp := split{}
	for _, m := range mans {
		sp.Map.Add(m.Stats)
		if m.Quarantine != "" {
			sp.Quarantines = append(sp.Quarantines, m.Shard)
		}
	}
	if err := s.guardShrink(p, sp.Map); err != nil {
		return sp, err
	}
	sc, changes, coll, err := s.reserveSchema(ctx, mans)
	if err != nil {
		return sp, err
	}
	sp.Schema, sp.SchemaChanges, sp.Collisions = sc.Version, changes, coll
	cols := sc.Plan(s.Spec, coll)
	published, err := s.publishedKeys(ctx, p)
	if err != nil {
		return sp, err
	}
	ff, err := s.Spec.FileFormat()
	if err != nil {
		return sp, fault.Permanent(err)
	}
	ratio := outputRatio(s.Spec, ff, p)
	sz := s.sizing(p)
	dbs := make([]dateBuckets, len(p.Dates))
	dates := make([]dateSplit, len(p.Dates))
	for i, d := range p.Dates {
		dbs[i], dates[i] = bucketsOf(mans, d)
	}
	for i := range dates {
		dates[i] = splitDate(dates[i], dbs[i], ratio, sz)
		if dates[i].Rows > 0 {
			dates[i].Columns = mapper.DateColumns(s.Spec, cols, mans, dates[i].Date)
		}
	}
	// Column groups: enough encode tasks for the fleet, and no task
	// holding more than its memory of one row group's values.
	rowGroups := 0
	for _, ds := range dates {
		rowGroups += len(ds.RowGroups)
	}
	var docs []sliceDoc
	for i := range dates {
		ds := &dates[i]
		if ds.Rows == 0 {
			continue
		}
		weights, err := s.columnWeights(ctx, mans, cols, ds)
		if err != nil {
			return sp, err
		}
		ds.Groups = columnGroups(weights, ff.SplitsColumns(), *ds, rowGroups, sz)
		for _, rg := range ds.RowGroups {
			for i := rg.Slices[0]; i < rg.Slices[1]; i++ {
				in := s.sliceInput(mans, cols, ds, p.Dates, i)
				in.Published = published.of(ds.Date, [2]int{in.Lo, in.Hi}, s.Spec.DedupeHorizonDays)
				docs = append(docs, sliceDoc{Input: in})
			}
		}
		sp.Encodes += ds.fragments()
	}
	sp.Dates = dates
	if sc.Converted < sc.Version {
		sp.ConvertedThrough = sc.Version
		if _, ok := ff.(format.Converter); ok { // CSV text reads as the wider type as it is
			convs, deferred, err := s.planConversions(ctx, sc, p)
			if err != nil {
				return sp, err
			}
			if sp.Deferred = deferred; len(deferred) > 0 {
				sp.ConvertedThrough = 0
			}
			tableCols := s.convertColumns(cols.TableColumns())
			for _, cv := range convs {
				ds := dateSplit{Date: cv.Date, Files: len(cv.Files), Convert: true, ConvertFiles: cv.Files, Columns: tableCols}
				sp.Converts = append(sp.Converts, ds)
				sp.Encodes += ds.fragments()
			}
		}
	}
	sp.Reduces = len(docs)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, doc := range docs {
		doc.Reduces = len(docs)
		g.Go(func() error {
			return storage.WriteJSON(gctx, s.Scratch, s.sliceKey(doc.Input.Date, doc.Input.Slice), doc)
		})
	}
	if err := g.Wait(); err != nil {
		return sp, err
	}
	files, groups := 0, 0
	for _, ds := range sp.Dates {
		files += ds.Files
		groups = max(groups, len(ds.Groups))
	}
	s.log().Info("transform split", "files", files, "row_groups", rowGroups, "slices", sp.Reduces, "column_groups", groups,
		"encodes", sp.Encodes, "dates", len(sp.Dates), "ratio", ratio, "schema", sc.Version,
		"converted_partitions", len(sp.Converts), "deferred_partitions", len(sp.Deferred))
	return sp, storage.WriteJSON(ctx, s.Scratch, s.splitKey(), sp)
}

// manifests reads the manifests of all shards.
func (s *Step) manifests(ctx context.Context, shards int) ([]*mapper.Manifest, error) {
	mans := make([]*mapper.Manifest, shards)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range mans {
		g.Go(func() error {
			m, err := mapper.ReadManifest(gctx, s.Scratch, s.shardDir(i), i)
			mans[i] = m
			return err
		})
	}
	return mans, g.Wait()
}

// guardShrink refuses, before any published file changes, a rebuild that
// would leave a partition with far fewer rows than its last build
// published: what a mistyped or emptied input looks like.
func (s *Step) guardShrink(p plan, mapped mapper.Stats) error {
	if s.AllowShrink {
		return nil
	}
	var bad []string
	for _, d := range p.Dates {
		b, ok := p.Builds[d.String()]
		before := b.MappedRows
		if before == 0 {
			before = b.Rows // a build recorded before mapped rows were
		}
		if !ok || before == 0 {
			continue
		}
		if rows := mapped.Rows[d]; float64(rows) < ShrinkRatio*float64(before) {
			bad = append(bad, fmt.Sprintf("%s (built by run %s from %d rows in %d objects, %d published; this run read %d)", d, b.RunID, before, b.Objects, b.Rows, rows))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fault.Permanent(fmt.Errorf("refusing to replace partitions with far fewer rows than they hold: %s; the input %s (%s) may be wrong or incomplete; start with -allow-shrink to replace them anyway",
		strings.Join(bad, ", "), s.In.Location(), sourcePaths(s.Spec)))
}

// outputRatio estimates output bytes per row-record byte: what the last
// builds of the window's partitions measured, else the file format's
// default.
func outputRatio(spec transform.Spec, ff format.Format, p plan) float64 {
	var out, in int64
	for _, b := range p.Builds {
		if b.Bytes > 0 && b.InputBytes > 0 {
			out += b.Bytes
			in += b.InputBytes
		}
	}
	if in > 0 {
		return float64(out) / float64(in)
	}
	return ff.OutputRatio(spec.Compression)
}

// sizing is what a date is split by.
type sizing struct {
	target   int64 // a file's estimated bytes (target_file_bytes)
	rowGroup int64 // a row group's estimated bytes
	slice    int64 // a slice's rows, in reduce.RowCost
	encode   int64 // the row-record bytes of one row group an encode task may hold
	minGroup int64 // the fewest row-record bytes a column group is cut for
	// tasks is how many reduce tasks and how many encode tasks the step
	// aims at: tasksPerSlot per slot of the fleet the plan saw, at least
	// MinTasks, as for the map.
	tasks int
}

func (s *Step) sizing(p plan) sizing {
	sz := sizing{target: s.Spec.TargetFileBytes, rowGroup: s.ReduceOptions.RowGroupBytes, slice: s.PlanOptions.SliceBytes}
	if sz.slice <= 0 {
		sz.slice = DefaultSliceBytes
	}
	if sz.rowGroup <= 0 {
		sz.rowGroup = reduce.DefaultRowGroupBytes
	}
	memory := s.ReduceOptions.MemoryBytes
	if memory <= 0 {
		memory = reduce.DefaultMemory
	}
	// An encode task holds its columns' values of one row group, about
	// their row-record bytes, and the writer's buffers beside them.
	sz.encode = memory / 2
	if sz.minGroup = s.PlanOptions.MinGroupBytes; sz.minGroup <= 0 {
		sz.minGroup = DefaultMinGroupBytes
	}
	minTasks := s.PlanOptions.MinTasks
	if minTasks <= 0 {
		minTasks = DefaultMinMapTasks
	}
	sz.tasks = max(p.Slots*tasksPerSlot, minTasks)
	return sz
}

// dateBuckets are one date's rows by virtual bucket.
type dateBuckets struct {
	raw, rows []int64
}

func (db dateBuckets) cost(lo, hi int) []int64 {
	out := make([]int64, hi-lo)
	for v := lo; v < hi; v++ {
		out[v-lo] = reduce.RowCost(db.raw[v], db.rows[v])
	}
	return out
}

func sum(xs []int64) int64 {
	var t int64
	for _, x := range xs {
		t += x
	}
	return t
}

// bucketsOf sums the shards' rows of date d by virtual bucket.
func bucketsOf(mans []*mapper.Manifest, d civil.Date) (dateBuckets, dateSplit) {
	ds := dateSplit{Date: d}
	db := dateBuckets{raw: make([]int64, intermediate.VBuckets), rows: make([]int64, intermediate.VBuckets)}
	for _, m := range mans {
		if df := m.Date(d); df != nil {
			ds.Rows += df.Rows
			ds.Bytes += df.Bytes
			for v := range db.raw {
				db.raw[v] += df.RowsIndex.Raw[v+1] - df.RowsIndex.Raw[v]
				db.rows[v] += df.RowsIndex.Rows[v+1] - df.RowsIndex.Rows[v]
			}
		}
	}
	return db, ds
}

// DefaultMinGroupBytes is the fewest row-record bytes of a row group one
// column group is cut for: below it an encode task's fixed costs (its
// input documents, the barrier, a fragment to upload and assemble) weigh
// more than the columns it writes, so a small date is one column group.
const DefaultMinGroupBytes = 4 << 20

// DefaultSliceBytes is the size of a slice, in reduce.RowCost: what a
// reduce task sorts in memory at the worker's default task memory
// (64 MiB), with room to spare.
const DefaultSliceBytes = 48 << 20

// splitDate cuts a date's virtual buckets into files, each file's into
// row groups, each row group's into slices:
//
//   - files: the date's estimated output over target_file_bytes, at least
//     one (Athena reads files of about 256 MiB best);
//   - row groups: each file's estimated output over the row group size
//     (reduce.Options.RowGroupBytes, 64 MiB by default), at least one;
//   - slices, one reduce task each: as many as it takes for each to hold
//     about sz.slice of rows (reduce.RowCost), what a reduce task sorts
//     in memory.
//
// All three depend on the data and the target sizes only, so a rebuild
// reproduces a partition's layout whatever the fleet (slices change no
// byte of it: the encode tasks merge them; column groups, see
// columnGroups, follow the fleet). Every cut is a range of virtual
// buckets of about equal bytes.
func splitDate(ds dateSplit, db dateBuckets, ratio float64, sz sizing) dateSplit {
	if ds.Rows == 0 {
		return ds
	}
	ds.Estimate = int64(float64(ds.Bytes) * ratio)
	ds.Files = int(min(max(math.Round(float64(ds.Estimate)/float64(sz.target)), 1), intermediate.VBuckets))
	for f, fr := range cutRanges(db.raw, ds.Files) {
		fileRaw := sum(db.raw[fr[0]:fr[1]])
		n := fr[1] - fr[0]
		rgs := int(min(max(math.Round(float64(fileRaw)*ratio/float64(sz.rowGroup)), 1), float64(n)))
		for _, r := range cutRanges(db.raw[fr[0]:fr[1]], rgs) {
			lo, hi := fr[0]+r[0], fr[0]+r[1]
			cost := db.cost(lo, hi)
			slices := int(min(max((sum(cost)+sz.slice-1)/sz.slice, 1), int64(hi-lo)))
			first := len(ds.SliceRanges)
			for _, sr := range cutRanges(cost, slices) {
				ds.SliceRanges = append(ds.SliceRanges, [2]int{lo + sr[0], lo + sr[1]})
			}
			ds.RowGroups = append(ds.RowGroups, rowGroupSplit{File: f, Lo: lo, Hi: hi, Bytes: sum(db.raw[lo:hi]), Slices: [2]int{first, len(ds.SliceRanges)}})
		}
	}
	ds.Slices = len(ds.SliceRanges)
	return ds
}

// columnGroups cuts the date's columns, in file order, into groups of
// about equal bytes (weights), each encoded by its own task: as many as
// it takes for the largest row group's share of one group to fit an
// encode task (sz.encode), and at least enough that the step's row groups
// times the groups reach sz.tasks; never more than there are columns, nor
// than make groups of less than sz.minGroup bytes.
// A format whose rows cannot be split by column gets one group. The
// groups change no byte of the file: column chunks are encoded each on
// its own.
func columnGroups(weights []int64, splits bool, ds dateSplit, rowGroups int, sz sizing) []int {
	if !splits || len(ds.Columns) <= 1 {
		return []int{0}
	}
	var largest int64
	for _, rg := range ds.RowGroups {
		largest = max(largest, rg.Bytes)
	}
	k := max((largest+sz.encode-1)/sz.encode, int64((sz.tasks+rowGroups-1)/max(rowGroups, 1)), 1)
	k = min(k, int64(len(ds.Columns)), max(largest/sz.minGroup, 1))
	var groups []int
	for _, r := range cutRanges(weights, int(k)) {
		groups = append(groups, r[0])
	}
	return groups
}

// cutRanges cuts the virtual buckets into n contiguous, non-empty ranges
// of about equal bytes.
func cutRanges(perBucket []int64, n int) [][2]int {
	var total int64
	for _, b := range perBucket {
		total += b
	}
	out := make([][2]int, 0, n)
	lo, acc := 0, int64(0)
	for v, b := range perBucket {
		acc += b
		k := len(out) + 1 // the range being filled
		if k == n {
			break
		}
		// Close the range when it has its share, or when the buckets left
		// are only enough for one per remaining range.
		if (acc*int64(n) >= total*int64(k) && v+1 > lo) || len(perBucket)-(v+1) == n-k {
			out = append(out, [2]int{lo, v + 1})
			lo = v + 1
		}
	}
	return append(out, [2]int{lo, len(perBucket)})
}

// columnWeights estimates the bytes of each of the date's columns from a
// sample of its row records: the first virtual buckets of up to
// weightShards shards, about weightSample bytes each. The generated
// timestamp columns weigh 8 bytes a row.
func (s *Step) columnWeights(ctx context.Context, mans []*mapper.Manifest, cols column.Plan, ds *dateSplit) ([]int64, error) {
	const weightShards, weightSample = 4, 256 << 10
	w := make([]int64, len(ds.Columns))
	var rows int64
	seen := 0
	for _, m := range mans {
		df := m.Date(ds.Date)
		if df == nil || seen == weightShards {
			continue
		}
		seen++
		hi := 1
		for hi < intermediate.VBuckets && df.RowsIndex.Raw[hi] < weightSample {
			hi++
		}
		data, err := intermediate.NewReader(m.Codec).Load(ctx, s.Scratch, intermediate.SpanOf(s.shardDir(m.Shard)+df.RowsFile, df.RowsIndex, 0, hi), nil)
		if err != nil {
			return nil, err
		}
		n, err := reduce.AddColumnBytes(w, data, mapper.ColMap(cols, ds.Columns, m))
		if err != nil {
			return nil, fmt.Errorf("sample of shard %d: %w", m.Shard, err)
		}
		rows += n
	}
	for i, c := range ds.Columns {
		if c.Type == column.TypeLocalTime || c.Type == column.TypeUTCTime {
			w[i] = 8 * rows
		}
		w[i]++ // a column no sampled row holds still costs something
	}
	return w, nil
}

// sliceInput is the input of slice i of date ds: every shard's rows of the
// slice's virtual buckets on the date, and their ids on the other dates
// the run rebuilds. (Rows the map read for a date it does not rebuild say
// nothing of what that partition published; its keys files do, see
// publishedKeys.)
func (s *Step) sliceInput(mans []*mapper.Manifest, cols column.Plan, ds *dateSplit, rebuilt []civil.Date, i int) reduce.SliceInput {
	r := ds.SliceRanges[i]
	in := reduce.SliceInput{Date: ds.Date, Slice: i, Lo: r[0], Hi: r[1], Columns: ds.Columns, Groups: ds.Groups}
	for _, m := range mans {
		in.Codec = m.Codec
		for _, df := range m.Dates {
			if df.RowsIndex.Rows[r[1]] == df.RowsIndex.Rows[r[0]] {
				continue // no rows of these buckets
			}
			if df.Date == ds.Date {
				in.Shards = append(in.Shards, reduce.ShardRows{
					Shard: m.Shard, Key: s.shardDir(m.Shard) + df.RowsFile,
					ColMap: mapper.ColMap(cols, ds.Columns, m), Index: df.RowsIndex.Slice(r[0], r[1]),
				})
			} else if slices.Contains(rebuilt, df.Date) {
				in.Others = append(in.Others, reduce.ShardIDs{
					Shard: m.Shard, Key: s.shardDir(m.Shard) + df.IDsFile, Index: df.IDsIndex.Slice(r[0], r[1]),
				})
			}
		}
	}
	return in
}

// keysFile is one published file's keys file and its index.
type keysFile struct {
	Key   string
	Index intermediate.Index
}

// publishedDates are the keys files of partitions near the rebuilt dates
// that the run does not rebuild.
type publishedDates map[civil.Date][]keysFile

// publishedKeys reads the indexes of the keys files of every published
// partition within the dedupe horizon (Spec.DedupeHorizonDays) of a date
// the run rebuilds and that the run does not rebuild itself. Two copies of
// one message id whose timestamps fall on different dates then never both
// get published when only one of the dates is rebuilt: the rebuilt one
// leaves out a key the other already holds. Copies further apart than the
// horizon are not looked for (Segment's copies of one event differ by
// its clock-skew correction, seconds, not days).
func (s *Step) publishedKeys(ctx context.Context, p plan) (publishedDates, error) {
	h := s.Spec.DedupeHorizonDays
	var near []civil.Date
	for _, d := range p.Dates {
		for k := -h; k <= h; k++ {
			if n := d.AddDays(k); !slices.Contains(p.Dates, n) && !slices.Contains(near, n) {
				near = append(near, n)
			}
		}
	}
	out := publishedDates{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, n := range near {
		g.Go(func() error {
			return s.Out.List(gctx, s.keysDir(n), func(oi storage.ObjectInfo) error {
				ix, err := intermediate.ReadKeysIndex(gctx, s.Out, oi.Key, oi.Size)
				if err != nil {
					return err
				}
				mu.Lock()
				out[n] = append(out[n], keysFile{Key: oi.Key, Index: ix})
				mu.Unlock()
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("published keys: %w", err)
	}
	for _, kfs := range out {
		slices.SortFunc(kfs, func(a, b keysFile) int { return strings.Compare(a.Key, b.Key) })
	}
	return out, nil
}

// of is what the reduce of virtual buckets r of date d consults: the keys
// files of the published dates within h days, sliced to r.
func (pd publishedDates) of(d civil.Date, r [2]int, h int) []reduce.ShardIDs {
	var out []reduce.ShardIDs
	for _, n := range slices.SortedFunc(maps.Keys(pd), civil.Date.Compare) {
		if diff := n.Days() - d.Days(); diff < int64(-h) || diff > int64(h) {
			continue
		}
		for _, kf := range pd[n] {
			ix := kf.Index.Slice(r[0], r[1])
			if ix.Rows[len(ix.Rows)-1] == ix.Rows[0] {
				continue // none of these buckets
			}
			out = append(out, reduce.ShardIDs{Shard: -1, Key: kf.Key, Index: ix})
		}
	}
	return out
}
