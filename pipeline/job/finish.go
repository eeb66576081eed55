package job

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/bookmark"
	"sluice/pipeline/fault"
	"sluice/pipeline/mapper"
	"sluice/pipeline/storage"
	"sluice/pipeline/table"
	"sluice/pipeline/transform"
)

// finish ends a step whose partitions are all committed: it publishes the
// quarantine, checks the books, and only then records the bookmarks (a
// step whose lines are not all accounted for must not say its partitions
// are current).
func (s *Step) finish(ctx context.Context, bk *split) (*Summary, error) {
	var p plan
	if err := storage.ReadJSON(ctx, s.Scratch, s.planKey(), &p); err != nil {
		return nil, err
	}
	commits := make([]Commit, len(p.Dates))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, d := range p.Dates {
		g.Go(func() error { return storage.ReadJSON(gctx, s.Scratch, s.commitKey(d), &commits[i]) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	quarantineDir, err := s.publishQuarantine(ctx, bk.Quarantines)
	if err != nil {
		return nil, err
	}
	sum := &Summary{
		Shards: p.Shards, ShardBytes: p.ShardBytes, Slots: p.Slots,
		InputObjects: bk.Map.Objects, InputBytesCompressed: bk.Map.BytesCompressed, InputBytes: bk.Map.BytesUncompressed,
		LinesRead: bk.Map.LinesRead, OutsideWindow: bk.Map.OutsideWindow, FilteredOut: bk.Map.FilteredOut, RepairedUTF8: bk.Map.RepairedUTF8, Quarantined: bk.Map.Quarantined,
		QuarantineDir: quarantineDir, Partitions: map[string]int64{}, Files: map[string]int{},
		Rebuilt: p.Rebuild, Skipped: p.Skipped,
	}
	sum.addCollisions(bk.Collisions)
	sum.Layout = layoutOf(bk)
	for d, n := range bk.Map.Rows {
		if _, ok := p.Rebuild[d.String()]; !ok {
			sum.SkippedRows += n
		}
	}
	for _, c := range commits {
		sum.RowsWritten += c.Rows
		sum.Duplicates += c.Duplicates
		sum.OutputBytes += c.Bytes
		sum.Partitions[c.Date.String()] = c.Rows
		sum.Files[c.Date.String()] = len(c.Files)
		sum.Removed += len(c.Removed)
		if c.Spilled {
			sum.SpilledPartitions = append(sum.SpilledPartitions, c.Date.String())
		}
	}
	sum.reconcile()
	if !sum.Balanced {
		return sum, fault.Permanent(fmt.Errorf("reconciliation failed: %s", sum.Reconciliation))
	}
	run := table.Run{ID: s.RunID, Step: s.Name}
	for _, c := range commits {
		run.Partitions = append(run.Partitions, table.Partition{Date: c.Date, Files: c.Files})
	}
	if err := s.tableFormat().CommitRun(ctx, s.Out, run); err != nil {
		return sum, err
	}
	if s.Table != nil {
		// Conversions are partitions of this snapshot too.
		all := append([]Commit(nil), commits...)
		for _, cv := range bk.Converts {
			var c Commit
			if err := storage.ReadJSON(ctx, s.Scratch, s.commitKey(cv.Date), &c); err != nil {
				return sum, err
			}
			all = append(all, c)
		}
		begin := time.Now()
		if sum.Iceberg, err = s.publishIceberg(ctx, all, bk.columns()); err != nil {
			return sum, err
		}
		sum.Iceberg.CommitMillis = time.Since(begin).Milliseconds()
	}
	if err := s.recordBookmarks(ctx, p, bk, commits); err != nil {
		return sum, err
	}
	if sum.Schema, err = s.finishConversions(ctx, bk); err != nil {
		return sum, err
	}
	return sum, nil
}

// finishConversions records the converted partitions' new files in their
// build records and, when no partition was deferred, that the table's
// files all hold the schema's types now.
func (s *Step) finishConversions(ctx context.Context, bk *split) (*SchemaSummary, error) {
	ss := &SchemaSummary{Version: bk.Schema, Added: bk.SchemaChanges.Added, Widened: bk.SchemaChanges.Widened, Deferred: bk.Deferred}
	if len(bk.Converts) > 0 {
		ss.Converted = map[string]int{}
		names := make([]string, len(bk.Converts))
		for i, cv := range bk.Converts {
			names[i] = cv.Date.String()
		}
		builds, err := s.Bookmarks.Builds(ctx, names)
		if err != nil {
			return ss, err
		}
		for _, cv := range bk.Converts {
			var c Commit
			if err := storage.ReadJSON(ctx, s.Scratch, s.commitKey(cv.Date), &c); err != nil {
				return ss, err
			}
			ss.Converted[cv.Date.String()] = len(c.Files)
			if b, ok := builds[cv.Date.String()]; ok {
				b.Files, b.Bytes = c.Files, c.Bytes
				if err := s.Bookmarks.RecordBuild(ctx, b); err != nil {
					return ss, err
				}
			}
		}
		s.log().Info("partitions converted to the table schema", "version", bk.Schema, "partitions", len(bk.Converts))
	}
	if bk.ConvertedThrough > 0 {
		if err := s.markConverted(ctx, bk.ConvertedThrough); err != nil {
			return ss, err
		}
	}
	if len(bk.Deferred) > 0 {
		s.log().Warn("schema conversion deferred: other runs own these partitions; a later run converts them", "partitions", bk.Deferred)
	}
	return ss, nil
}

// publishQuarantine copies the quarantine of every shard that has one to
// QuarantineDir()/shard-NNNNN.ndjson.gz in the output and deletes any other
// object of that folder, so a retry replaces what it published before. It
// returns the folder, or "" when nothing was quarantined.
func (s *Step) publishQuarantine(ctx context.Context, shards []int) (string, error) {
	dir := s.QuarantineDir()
	keep := map[string]bool{}
	for _, shard := range shards {
		dst := fmt.Sprintf("%sshard-%05d.ndjson.gz", dir, shard)
		src := s.shardDir(shard) + mapper.QuarantineFile
		rc, err := s.Scratch.Get(ctx, src)
		if err != nil {
			return "", fmt.Errorf("publish quarantine: %w", err)
		}
		err = s.Out.Put(ctx, dst, rc)
		rc.Close()
		if err != nil {
			return "", fmt.Errorf("publish quarantine: put %s: %w", dst, err)
		}
		keep[dst] = true
	}
	if _, err := storage.DeleteStale(ctx, s.Out, dir, func(k string) bool { return keep[k] }); err != nil {
		return "", fmt.Errorf("publish quarantine: %w", err)
	}
	if len(shards) == 0 {
		return "", nil
	}
	return dir, nil
}

// recordBookmarks remembers what this run read and built: the event dates
// of every object it read, and for every rebuilt partition the fingerprint
// of the objects that hold its events and what the build published. A
// partition's contributors are all among the objects read, because a
// partition is only rebuilt with every known object that feeds it.
func (s *Step) recordBookmarks(ctx context.Context, p plan, bk *split, commits []Commit) error {
	shards := make([]transform.Shard, p.Shards)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range shards {
		g.Go(func() error { return storage.ReadJSON(gctx, s.Scratch, s.shardKey(i), &shards[i]) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var read []transform.Object
	for _, sh := range shards {
		read = append(read, sh.Objects...)
	}
	entries := make(map[string]bookmark.ObjectEntry, len(read))
	for _, o := range read {
		e := bookmark.ObjectEntry{ETag: o.ETag, Dates: []string{}}
		for _, d := range bk.Map.ObjectDates[o.Key] {
			e.Dates = append(e.Dates, d.String())
		}
		entries[o.Key] = e
	}
	if err := s.Bookmarks.RecordObjects(ctx, entries); err != nil {
		return err
	}
	contrib := bookmark.Contributors(read, entries)
	now := time.Now().UTC()
	for _, c := range commits {
		date := c.Date.String()
		b := bookmark.Build{
			Date: date, Fingerprint: bookmark.Fingerprint(contrib[date]), Spec: s.SpecID, RunID: s.RunID, BuiltAt: now,
			Objects: len(contrib[date]), Inputs: bookmark.Keys(contrib[date]), Rows: c.Rows, MappedRows: c.MappedRows, Files: c.Files, Bytes: c.Bytes, InputBytes: c.InputBytes,
		}
		if err := s.Bookmarks.RecordBuild(ctx, b); err != nil {
			return err
		}
	}
	return nil
}
