package transform

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"sluice/pipeline/storage"
)

// ListMapDates lists the dates that got rows in any mapped shard under
// scratchPrefix (shards whose manifest exists).
func ListMapDates(ctx context.Context, scratch storage.Reader, scratchPrefix string) ([]Date, error) {
	prefix := normPrefix(scratchPrefix)
	var keys []string
	err := scratch.List(ctx, prefix+"map/", func(oi storage.ObjectInfo) error {
		if path.Base(oi.Key) == "manifest.json" {
			keys = append(keys, oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list map dates: %w", err)
	}
	seen := map[Date]bool{}
	for _, k := range keys {
		var shard int
		if _, err := fmt.Sscanf(path.Base(path.Dir(k)), "shard-%d", &shard); err != nil {
			continue
		}
		m, err := readManifest(ctx, scratch, prefix, shard)
		if err != nil {
			return nil, fmt.Errorf("list map dates: %w", err)
		}
		for _, md := range m.Dates {
			seen[md.Date] = true
		}
	}
	out := make([]Date, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	slices.SortFunc(out, Date.Compare)
	return out, nil
}

// Cleanup deletes every intermediate object under scratchPrefix. Call it
// after all partitions (and the quarantine) are published.
func Cleanup(ctx context.Context, scratch storage.Bucket, scratchPrefix string) error {
	prefix := normPrefix(scratchPrefix)
	var keys []string
	err := scratch.List(ctx, prefix+"map/", func(oi storage.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cleanup %s: %w", prefix, err)
	}
	for _, k := range keys {
		if err := scratch.Delete(ctx, k); err != nil {
			return fmt.Errorf("cleanup %s: delete %s: %w", prefix, k, err)
		}
	}
	return nil
}

// QuarantineDir is the output folder of one run's quarantine:
// _errors/window=<start>_<end>/run=<run>/ (ignored by Athena/Hive readers,
// as it starts with "_"). Each run keeps its own folder: a run that reads
// only part of the window's input (bookmarks) must not erase what an
// earlier run quarantined from the rest.
func QuarantineDir(w Window, run string) string {
	return "_errors/window=" + w.String() + "/run=" + run + "/"
}

// PublishQuarantine copies every shard's quarantine to
// dir/shard-NNNNN.ndjson.gz in out (dir: see QuarantineDir) and deletes any
// other object in that folder, so a retry replaces what it published before.
// It returns the number of quarantined records and the published keys.
func PublishQuarantine(ctx context.Context, scratch storage.Reader, scratchPrefix string, out storage.Bucket, dir string, shardCount int) (int64, []string, error) {
	prefix := normPrefix(scratchPrefix)
	mans, err := readManifests(ctx, scratch, prefix, shardCount)
	if err != nil {
		return 0, nil, fmt.Errorf("publish quarantine: %w", err)
	}
	var total int64
	var published []string
	for shard, m := range mans {
		n := m.Stats.QuarantinedTotal()
		if n == 0 {
			continue
		}
		total += n
		dst := fmt.Sprintf("%sshard-%05d.ndjson.gz", dir, shard)
		rc, err := scratch.Get(ctx, quarantineKey(prefix, shard))
		if err != nil {
			return 0, nil, fmt.Errorf("publish quarantine: get shard %d: %w", shard, err)
		}
		err = out.Put(ctx, dst, rc)
		rc.Close()
		if err != nil {
			return 0, nil, fmt.Errorf("publish quarantine: put %s: %w", dst, err)
		}
		published = append(published, dst)
	}
	var stale []string
	err = out.List(ctx, dir, func(oi storage.ObjectInfo) error {
		if !slices.Contains(published, oi.Key) {
			stale = append(stale, oi.Key)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("publish quarantine: list %s: %w", dir, err)
	}
	for _, k := range stale {
		if err := out.Delete(ctx, k); err != nil {
			return 0, nil, fmt.Errorf("publish quarantine: delete %s: %w", k, err)
		}
	}
	return total, published, nil
}

// Reconcile checks the run's books: lines read = rows written + duplicates
// + outside window + quarantined, over all shards and all partitions of
// the window.
func Reconcile(maps []MapStats, parts []PartitionStats) error {
	var lines, outside, quarantined, mapped, rows, dups int64
	for _, m := range maps {
		lines += m.LinesRead
		outside += m.OutsideWindow
		quarantined += m.QuarantinedTotal()
		mapped += m.RowsTotal()
	}
	for _, p := range parts {
		rows += p.Rows
		dups += p.Duplicates
	}
	if lines != rows+dups+outside+quarantined {
		var b strings.Builder
		fmt.Fprintf(&b, "reconcile: lines read %d != rows %d + duplicates %d + outside window %d + quarantined %d", lines, rows, dups, outside, quarantined)
		if mapped != rows+dups {
			fmt.Fprintf(&b, " (mapped rows %d: some partitions not reduced?)", mapped)
		}
		return fmt.Errorf("%s", b.String())
	}
	return nil
}
