package icetable

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"

	"sluice/pipeline/format"
	"sluice/pipeline/format/parquet"
	"sluice/pipeline/storage"
)

// CompactionProperty names, in a compaction's snapshot summary, the
// compaction it committed, so that a compaction retried after it landed
// is recognised.
const CompactionProperty = "sluice.compaction"

// CompactOptions say which files a compaction joins and how.
type CompactOptions struct {
	// ID names the compaction (sluice.compaction): the run whose
	// registration step compacts, or one a person gave.
	ID   string
	Step string
	// Dates limits it to these partitions; none: every partition.
	Dates []string
	// TargetFileBytes is the size joined files aim at (the job's
	// target_file_bytes). A file under 3/4 of it is small, one over 9/5
	// of it is left alone: Iceberg's own defaults, relative to the target.
	TargetFileBytes int64
	// MinFiles is how many small files of a partition it takes to join
	// them (at least 2).
	MinFiles int
	// KV is the joined files' footer key-value metadata.
	KV map[string]string
}

// CompactResult is what a compaction did.
type CompactResult struct {
	SnapshotID int64 `json:"snapshot_id,omitempty"`
	// Landed is false when there was nothing to join, or when an earlier
	// attempt had committed this compaction.
	Landed     bool     `json:"landed"`
	Joined     int      `json:"joined_files"`  // small files replaced
	Written    int      `json:"written_files"` // files that replaced them
	Bytes      int64    `json:"bytes"`         // of the files written
	Partitions []string `json:"partitions,omitempty"`
	// Skipped are groups left as they were, with why (their files were
	// replaced meanwhile, or their schemas differ).
	Skipped []string `json:"skipped,omitempty"`
}

// compactGroup is small files of one partition that become one file.
type compactGroup struct {
	date  string
	files []iceberg.DataFile // in key order
	out   DataFile           // the joined file, once written
}

// Compact joins the small files of the table's partitions into files of
// about TargetFileBytes, in one snapshot (operation replace) whose
// summary names the compaction. The files are joined as they are: their
// row groups are copied, not decoded and encoded again (storage.Compose:
// server-side on S3), so a joined file holds exactly the rows of the
// files it replaces, in key order, with the writer's encodings and
// statistics; its row groups are as small as the small files' were.
//
// Which files to join comes from iceberg-go's bin-packing planner
// (table/compaction); the commit is iceberg-go's rewrite (RewriteFiles),
// which refuses to replace files that another commit removed meanwhile:
// then the groups still whole are committed again on the new table, and
// the written files of the others are deleted.
func (t *Table) Compact(ctx context.Context, o CompactOptions) (CompactResult, error) {
	var res CompactResult
	if o.TargetFileBytes <= 0 {
		return res, fmt.Errorf("compact %s: the target file size must be positive", t.Ident())
	}
	groups, ids, landed, err := t.planCompaction(ctx, o)
	if err != nil || landed != 0 || len(groups) == 0 {
		res.SnapshotID = landed
		return res, err
	}
	// Unique names: a retried compaction never overwrites a file that a
	// landed attempt may reference.
	tag := randomTag()
	var written []string
	for i, g := range groups {
		key := path.Join(path.Dir(t.keyOf(g.files[0].FilePath())), fmt.Sprintf("part-%05d-compacted-%s.parquet", i, tag))
		if err := t.join(ctx, g, ids, key, o.KV); err != nil {
			if errors.Is(err, parquet.ErrColumnsDiffer) {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s: %v", g.date, err))
				g.files = nil
				continue
			}
			t.deleteQuietly(ctx, written)
			return res, err
		}
		written = append(written, key)
	}
	groups = slices.DeleteFunc(groups, func(g *compactGroup) bool { return g.files == nil })
	if t.beforeCompactionCommit != nil {
		t.beforeCompactionCommit()
	}
	committed, err := t.commitCompaction(ctx, o, groups, &res)
	if err != nil {
		return res, err
	}
	var stale []string
	for _, k := range written {
		if !slices.Contains(committed, k) {
			stale = append(stale, k)
		}
	}
	t.deleteQuietly(ctx, stale)
	return res, nil
}

// planCompaction groups the small files of o.Dates. It returns the
// snapshot of the compaction instead when one landed already.
func (t *Table) planCompaction(ctx context.Context, o CompactOptions) (groups []*compactGroup, ids map[string]int, landed int64, err error) {
	cfg := compaction.DefaultConfig()
	cfg.TargetFileSizeBytes = o.TargetFileBytes
	cfg.MinFileSizeBytes = o.TargetFileBytes * 3 / 4
	cfg.MaxFileSizeBytes = o.TargetFileBytes * 9 / 5
	cfg.MinInputFiles = uint(max(o.MinFiles, 2))
	err = t.cats.with(ctx, func(cat catalog.Catalog) error {
		groups, ids, landed = nil, map[string]int{}, 0
		tbl, err := cat.LoadTable(ctx, t.ident)
		if err != nil {
			return fmt.Errorf("load table %s: %w", t.Ident(), err)
		}
		if s := snapshotWith(tbl.Metadata(), CompactionProperty, o.ID); s != nil {
			landed = s.SnapshotID
			return nil
		}
		if tbl.CurrentSnapshot() == nil {
			return nil
		}
		var opts []table.ScanOption
		if len(o.Dates) > 0 {
			opts = append(opts, table.WithRowFilter(iceberg.IsIn(iceberg.Reference(DateColumn), o.Dates...)))
		}
		tasks, err := tbl.Scan(opts...).PlanFiles(ctx)
		if err != nil {
			return fmt.Errorf("list the files of %s: %w", t.Ident(), err)
		}
		tasks = slices.DeleteFunc(tasks, func(task table.FileScanTask) bool {
			d, _ := task.File.Partition()[partitionFieldID].(string)
			return len(o.Dates) > 0 && !slices.Contains(o.Dates, d)
		})
		plan, err := cfg.PlanCompaction(tasks)
		if err != nil {
			return fmt.Errorf("plan the compaction of %s: %w", t.Ident(), err)
		}
		for _, pg := range plan.Groups {
			g := &compactGroup{}
			for _, task := range pg.Tasks {
				g.files = append(g.files, task.File)
			}
			slices.SortFunc(g.files, func(a, b iceberg.DataFile) int { return strings.Compare(a.FilePath(), b.FilePath()) })
			g.date, _ = g.files[0].Partition()[partitionFieldID].(string)
			groups = append(groups, g)
		}
		for _, f := range tbl.Schema().Fields() {
			ids[f.Name] = f.ID
		}
		return nil
	})
	return groups, ids, landed, err
}

// join writes g's files as one file at key, and describes it in g.out.
func (t *Table) join(ctx context.Context, g *compactGroup, ids map[string]int, key string, kv map[string]string) error {
	blocks := make([][]format.FragmentRef, len(g.files))
	for i, f := range g.files {
		blocks[i] = []format.FragmentRef{{Key: t.keyOf(f.FilePath()), Size: f.FileSizeBytes()}}
	}
	sections, df, err := Assemble(ctx, t.out, blocks, ids, kv, "")
	if err != nil {
		// parquet.ErrColumnsDiffer, when the files' columns differ, is
		// left for Compact to tell from other failures.
		return fmt.Errorf("join the small files of %s: %w", g.date, err)
	}
	if err := storage.Compose(ctx, t.out, key, sections); err != nil {
		return err
	}
	df.Key, df.Date = key, g.date
	g.out = df
	return nil
}

// commitCompaction replaces each group's files by its joined file, in
// one snapshot, leaving out the groups whose files are no longer all
// current. It returns the keys of the joined files it committed.
func (t *Table) commitCompaction(ctx context.Context, o CompactOptions, groups []*compactGroup, res *CompactResult) ([]string, error) {
	var committed []string
	err := t.cats.with(ctx, func(cat catalog.Catalog) error {
		committed = committed[:0]
		res.Joined, res.Written, res.Bytes, res.Partitions = 0, 0, 0, nil
		tbl, err := cat.LoadTable(ctx, t.ident)
		if err != nil {
			return fmt.Errorf("load table %s: %w", t.Ident(), err)
		}
		if s := snapshotWith(tbl.Metadata(), CompactionProperty, o.ID); s != nil {
			res.SnapshotID, res.Landed = s.SnapshotID, false
			return nil
		}
		current, err := t.currentPaths(ctx, tbl)
		if err != nil {
			return err
		}
		props := iceberg.Properties{CompactionProperty: o.ID, StepProperty: o.Step}
		rw := tbl.NewTransaction()
		rewrite := rw.NewRewrite(props)
		dates := map[string]bool{}
		for _, g := range groups {
			if !slices.ContainsFunc(g.files, func(f iceberg.DataFile) bool { return current[f.FilePath()] }) ||
				slices.ContainsFunc(g.files, func(f iceberg.DataFile) bool { return !current[f.FilePath()] }) {
				res.Skipped = appendOnce(res.Skipped, g.date+": its files were replaced meanwhile")
				continue
			}
			df, err := g.out.build(tbl.Spec(), t.location)
			if err != nil {
				return err
			}
			for _, f := range g.files {
				rewrite.DeleteFile(f)
			}
			rewrite.AddDataFile(df)
			committed = append(committed, g.out.Key)
			res.Joined += len(g.files)
			res.Written++
			res.Bytes += g.out.Bytes
			dates[g.date] = true
		}
		if len(committed) == 0 {
			return nil
		}
		res.Partitions = slices.Sorted(maps.Keys(dates))
		if err := rewrite.Commit(ctx); err != nil {
			return fmt.Errorf("stage the compaction of %s: %w", t.Ident(), err)
		}
		after, err := rw.Commit(ctx)
		if err != nil {
			return fmt.Errorf("commit the compaction of %s: %w", t.Ident(), err)
		}
		res.SnapshotID, res.Landed = after.CurrentSnapshot().SnapshotID, true
		return nil
	})
	return committed, err
}

// currentPaths are the paths of the current snapshot's data files.
func (t *Table) currentPaths(ctx context.Context, tbl *table.Table) (map[string]bool, error) {
	paths := map[string]bool{}
	if tbl.CurrentSnapshot() == nil {
		return paths, nil
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the files of %s: %w", t.Ident(), err)
	}
	for _, task := range tasks {
		paths[task.File.FilePath()] = true
	}
	return paths, nil
}

// deleteQuietly removes files written for a commit that did not take
// them; what it cannot remove the registration step's orphan sweep does.
func (t *Table) deleteQuietly(ctx context.Context, keys []string) {
	for _, k := range keys {
		_ = t.out.Delete(ctx, k) // best effort: RemoveOrphans catches what stays
	}
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func randomTag() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}
