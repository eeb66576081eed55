package job

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/civil"
	"sluice/pipeline/fault"
	"sluice/pipeline/intermediate"
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

// Output size estimates, as output bytes per byte of row records, for a
// first build; later builds use the ratio their partitions' last builds
// measured. Measured on generated Segment events (see docs/BENCHMARKS.md).
var defaultOutputRatio = map[string]float64{"parquet": 0.2, "csv": 0.9, "csv.gz": 0.15}

// buckets is what the bucket phase decided, kept in scratch and written
// last: its presence means every reduce input exists.
type buckets struct {
	Dates []dateSplit `json:"dates"`
	// Map sums the statistics of every shard.
	Map        transform.MapStats    `json:"map"`
	Collisions []transform.Collision `json:"collisions,omitempty"`
	// Quarantines are the shards that quarantined lines, by shard number.
	Quarantines []int `json:"quarantines,omitempty"`
	// Reduces is the number of reduce tasks over all dates.
	Reduces int `json:"reduces"`
	// Schema is the table schema's version the run writes with, and
	// SchemaChanges what the run changed in it.
	Schema        int            `json:"schema"`
	SchemaChanges schema.Changes `json:"schema_changes"`
	// Converts are published partitions outside the rebuild whose files
	// are rewritten to the schema's types (one reduce task per file);
	// ConvertedThrough is the version that leaves every file at, 0 when
	// some partition was deferred (see planConversions).
	Converts         []dateSplit `json:"converts,omitempty"`
	Deferred         []string    `json:"deferred,omitempty"`
	ConvertedThrough int         `json:"converted_through,omitempty"`
}

// commits is how many partitions the step commits.
func (b *buckets) commits() int { return len(b.Dates) + len(b.Converts) }

// dateSplit is one date's split into files.
type dateSplit struct {
	Date     civil.Date `json:"date"`
	Rows     int64      `json:"rows"`  // rows mapped, before deduplication
	Bytes    int64      `json:"bytes"` // their row records' bytes
	Estimate int64      `json:"estimate_bytes"`
	Files    int        `json:"files"`
}

func (b *buckets) date(d civil.Date) (dateSplit, bool) {
	for _, ds := range slices.Concat(b.Dates, b.Converts) {
		if ds.Date == d {
			return ds, true
		}
	}
	return dateSplit{}, false
}

// reduceDoc is a reduce task's input in scratch.
type reduceDoc struct {
	Input transform.ReduceInput `json:"input"`
	// Convert, when set, is the published file this task rewrites to
	// Input.Columns (a schema conversion) instead of reducing Input.
	Convert *storage.ObjectInfo `json:"convert,omitempty"`
	// Reduces and Dates count the step's reduce tasks and dates, for
	// progress and the commit barrier.
	Reduces int `json:"reduces"`
	Dates   int `json:"dates"`
}

// Bucket reads every shard's manifest, refuses a rebuild that would shrink
// published partitions (see ShrinkRatio), decides how many files each date
// gets, and writes one reduce input per file. Dates without rows are ready
// to commit at once (their partitions are emptied).
func (s *Step) Bucket(ctx context.Context, shards int) (Next, error) {
	var p plan
	if err := storage.ReadJSON(ctx, s.Scratch, s.planKey(), &p); err != nil {
		return Next{}, err
	}
	var bk buckets
	err := storage.ReadJSON(ctx, s.Scratch, s.bucketsKey(), &bk)
	if errors.Is(err, storage.ErrNotExist) {
		if bk, err = s.bucket(ctx, p, shards); err != nil {
			return Next{}, err
		}
	} else if err != nil {
		return Next{}, err
	}
	if bk.commits() == 0 {
		// Nothing to write: a run that only came to convert and found
		// nothing left to do.
		sum, err := s.finish(ctx, &bk)
		return Next{Done: sum}, err
	}
	next := Next{CommitTotal: bk.commits()}
	for _, ds := range slices.Concat(bk.Dates, bk.Converts) {
		if ds.Files == 0 {
			next.Commits = append(next.Commits, ds.Date)
		}
		for b := range ds.Files {
			next.Reduces = append(next.Reduces, ReduceTask{Date: ds.Date, Bucket: b, Buckets: ds.Files})
		}
	}
	s.progress(ctx, "reduce 0/%d files", bk.Reduces)
	return next, nil
}

func (s *Step) bucket(ctx context.Context, p plan, shards int) (buckets, error) {
	mans, err := s.manifests(ctx, shards)
	if err != nil {
		return buckets{}, err
	}
	bk := buckets{}
	for _, m := range mans {
		bk.Map.Add(m.Stats)
		if m.Quarantine != "" {
			bk.Quarantines = append(bk.Quarantines, m.Shard)
		}
	}
	if err := s.guardShrink(p, bk.Map); err != nil {
		return bk, err
	}
	sc, changes, coll, err := s.reserveSchema(ctx, mans)
	if err != nil {
		return bk, err
	}
	bk.Schema, bk.SchemaChanges, bk.Collisions = sc.Version, changes, coll
	cols := sc.Plan(s.Spec, coll)
	ratio := outputRatio(s.Spec, p)
	var docs []reduceDoc
	for _, d := range p.Dates {
		ds := dateSplit{Date: d}
		perBucket := make([]int64, intermediate.VBuckets)
		for _, m := range mans {
			if df := m.Date(d); df != nil {
				ds.Rows += df.Rows
				ds.Bytes += df.Bytes
				for v := range perBucket {
					perBucket[v] += df.RowsIndex.Raw[v+1] - df.RowsIndex.Raw[v]
				}
			}
		}
		if ds.Rows > 0 {
			ds.Estimate = int64(float64(ds.Bytes) * ratio)
			ds.Files = int(min(max(math.Round(float64(ds.Estimate)/float64(s.Spec.TargetFileBytes)), 1), intermediate.VBuckets))
			dateCols := cols.DateColumns(s.Spec, mans, d)
			for b, r := range cutRanges(perBucket, ds.Files) {
				docs = append(docs, reduceDoc{Input: s.reduceInput(mans, cols, dateCols, d, b, ds.Files, r)})
			}
		}
		bk.Dates = append(bk.Dates, ds)
	}
	if sc.Converted < sc.Version {
		bk.ConvertedThrough = sc.Version
		if s.Spec.Format == "parquet" { // CSV text reads as the wider type as it is
			convs, deferred, err := s.planConversions(ctx, sc, p)
			if err != nil {
				return bk, err
			}
			if bk.Deferred = deferred; len(deferred) > 0 {
				bk.ConvertedThrough = 0
			}
			tableCols := cols.TableColumns()
			for _, cv := range convs {
				bk.Converts = append(bk.Converts, dateSplit{Date: cv.Date, Files: len(cv.Files)})
				for b, f := range cv.Files {
					docs = append(docs, reduceDoc{Convert: &f, Input: transform.ReduceInput{Date: cv.Date, Bucket: b, Buckets: len(cv.Files), Columns: tableCols}})
				}
			}
		}
	}
	bk.Reduces = len(docs)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, doc := range docs {
		doc.Reduces, doc.Dates = len(docs), bk.commits()
		g.Go(func() error {
			return storage.WriteJSON(gctx, s.Scratch, s.reduceKey(doc.Input.Date, doc.Input.Bucket), doc)
		})
	}
	if err := g.Wait(); err != nil {
		return bk, err
	}
	s.log().Info("transform split into files", "files", bk.Reduces, "dates", len(bk.Dates), "ratio", ratio,
		"schema", sc.Version, "converted_partitions", len(bk.Converts), "deferred_partitions", len(bk.Deferred))
	return bk, storage.WriteJSON(ctx, s.Scratch, s.bucketsKey(), bk)
}

// manifests reads the manifests of all shards.
func (s *Step) manifests(ctx context.Context, shards int) ([]*transform.ShardManifest, error) {
	mans := make([]*transform.ShardManifest, shards)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range mans {
		g.Go(func() error {
			m, err := transform.ReadManifest(gctx, s.Scratch, s.shardDir(i), i)
			mans[i] = m
			return err
		})
	}
	return mans, g.Wait()
}

// guardShrink refuses, before any published file changes, a rebuild that
// would leave a partition with far fewer rows than its last build
// published: what a mistyped or emptied input looks like.
func (s *Step) guardShrink(p plan, mapped transform.MapStats) error {
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
// builds of the window's partitions measured, else a default for the
// format.
func outputRatio(spec transform.Spec, p plan) float64 {
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
	return defaultOutputRatio[spec.FileExt()]
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

// reduceInput is the input of file b of date d: every shard's rows of the
// virtual buckets r on d, and their ids on the other dates.
func (s *Step) reduceInput(mans []*transform.ShardManifest, cols transform.ColumnPlan, dateCols []transform.Column, d civil.Date, b, files int, r [2]int) transform.ReduceInput {
	in := transform.ReduceInput{Date: d, Bucket: b, Buckets: files, Lo: r[0], Hi: r[1], Columns: dateCols}
	for _, m := range mans {
		in.Codec = m.Codec
		for _, df := range m.Dates {
			if df.RowsIndex.Rows[r[1]] == df.RowsIndex.Rows[r[0]] {
				continue // no rows of these buckets
			}
			if df.Date == d {
				in.Parts = append(in.Parts, transform.ReducePart{
					Shard: m.Shard, Key: s.shardDir(m.Shard) + df.RowsFile,
					ColMap: cols.ColMap(dateCols, m), Index: df.RowsIndex.Slice(r[0], r[1]),
				})
			} else {
				in.Others = append(in.Others, transform.ReduceIDs{
					Shard: m.Shard, Key: s.shardDir(m.Shard) + df.IDsFile, Index: df.IDsIndex.Slice(r[0], r[1]),
				})
			}
		}
	}
	return in
}
