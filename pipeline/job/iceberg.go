package job

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/format"
	"sluice/pipeline/format/parquet"
	"sluice/pipeline/icetable"
	"sluice/pipeline/storage"
	"sluice/pipeline/table"
)

// An Iceberg job (Step.Table set) writes the same files as a Hive one, at
// the same names, but publishes them differently:
//
//   - each date's commit task assembles its files with Iceberg field ids
//     and the writer's column metrics (icetable.Assemble), having first
//     added any new column to the table's schema; it deletes no old file,
//     which the table's earlier snapshots still reference;
//   - the last commit task replaces every partition of the run in one
//     snapshot (icetable.Publish) before it records the bookmarks: until
//     then readers see the table as it was, so a crash anywhere before
//     leaves the previous snapshot current and the next run rebuilds;
//   - the old builds' files go when their snapshots expire (the table's
//     registration step).

// IcebergSummary is what a job step's Iceberg commit did.
type IcebergSummary struct {
	Table      string `json:"table"`
	SnapshotID int64  `json:"snapshot_id,omitempty"`
	// Landed is false when an earlier attempt had committed the run.
	Landed       bool  `json:"landed"`
	Attempts     int   `json:"attempts"`
	AddedFiles   int   `json:"added_files"`
	RemovedFiles int   `json:"removed_files"`
	CommitMillis int64 `json:"commit_ms"`
}

func icebergColumns(cols []column.Column) []icetable.Column {
	out := make([]icetable.Column, len(cols))
	for i, c := range cols {
		out[i] = icetable.Column{Name: c.Name, Type: c.Type}
	}
	return out
}

// icebergAssemble is publishFile's assembly for an Iceberg table: the
// file's sections with field ids, and its description for the manifest.
func (s *Step) icebergAssemble(ctx context.Context, d civil.Date, ids map[string]int, f builtFile) ([]storage.Section, icetable.DataFile, error) {
	blocks, date := f.blocks, d.String()
	if f.whole != "" {
		// A converted file is one written whole: its own one block. It
		// kept the date column of the file it converts.
		blocks, date = [][]format.FragmentRef{{{Key: f.whole, Size: f.size}}}, ""
	}
	sections, df, err := icetable.Assemble(ctx, s.Out, blocks, ids, parquet.KeyValue(s.Spec.FormatOptions()), date)
	if err != nil {
		return nil, df, err
	}
	df.Key, df.Date = f.final, d.String()
	return sections, df, nil
}

// icebergDescribe describes a file an earlier attempt published (its
// fragments are gone): from its footer, which holds what the writer knew.
func (s *Step) icebergDescribe(ctx context.Context, d civil.Date, ids map[string]int, final string, size int64) (icetable.DataFile, error) {
	_, df, err := icetable.Assemble(ctx, s.Out, [][]format.FragmentRef{{{Key: final, Size: size}}}, ids, nil, "")
	df.Key, df.Date, df.Bytes = final, d.String(), size
	return df, err
}

// publishIceberg commits the run's partitions (every committed date, the
// converted ones too) to the Iceberg table in one snapshot.
func (s *Step) publishIceberg(ctx context.Context, commits []Commit, cols map[string]column.Column) (*IcebergSummary, error) {
	p := icetable.Publication{RunID: s.RunID, Step: s.Name}
	for _, c := range commits {
		p.Dates = append(p.Dates, c.Date.String())
		p.Files = append(p.Files, c.Iceberg...)
	}
	for _, n := range slices.Sorted(maps.Keys(cols)) {
		p.Columns = append(p.Columns, icetable.Column{Name: n, Type: cols[n].Type})
	}
	res, err := s.Table.Publish(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("iceberg commit to %s: %w", s.Table.Ident(), err)
	}
	sum := &IcebergSummary{Table: s.Table.Ident(), SnapshotID: res.SnapshotID, Landed: res.Landed, Attempts: res.Attempts, AddedFiles: res.Added, RemovedFiles: res.Removed}
	s.log().Info("iceberg snapshot committed", "table", sum.Table, "snapshot", res.SnapshotID, "landed", res.Landed, "attempts", res.Attempts, "dates", len(p.Dates), "files", res.Added, "replaced", res.Removed)
	return sum, nil
}

// icebergFiles lists the current snapshot's files by date.
func (s *Step) icebergFiles(ctx context.Context) (map[civil.Date][]storage.ObjectInfo, error) {
	refs, err := s.Table.Files(ctx)
	if err != nil {
		return nil, err
	}
	files := map[civil.Date][]storage.ObjectInfo{}
	for _, f := range refs {
		d, err := civil.Parse(f.Date)
		if err != nil {
			return nil, fmt.Errorf("table %s: a file of partition %q: %w", s.Table.Ident(), f.Date, err)
		}
		files[d] = append(files[d], storage.ObjectInfo{Key: f.Key, Size: f.Size})
	}
	return files, nil
}

// columns are the columns the run wrote, with the types it wrote them
// with, over every date and conversion.
func (sp *split) columns() map[string]column.Column {
	cols := map[string]column.Column{}
	for _, ds := range slices.Concat(sp.Dates, sp.Converts) {
		for _, c := range ds.Columns {
			cols[c.Name] = c
		}
	}
	return cols
}

// convertColumns are the columns a schema conversion rewrites a file of
// the table with: an Iceberg table's files also hold the date column.
func (s *Step) convertColumns(cols []column.Column) []column.Column {
	if s.Table == nil {
		return cols
	}
	return append([]column.Column{{Name: icetable.DateColumn, Type: column.TypeString}}, cols...)
}

// icebergPartitions is the table format of an Iceberg job's partitions
// (tableFormat): a date's commit removes no file, since the table's
// earlier snapshots still reference them until they expire, and the
// folders are not the table, so there is no drift to look for. The run's
// one snapshot is committed by publishIceberg, from what the commits
// described of their files (Commit.Iceberg), before the bookmarks.
type icebergPartitions struct{}

func (icebergPartitions) Name() string { return "iceberg" }

func (icebergPartitions) ReplacePartition(context.Context, storage.Bucket, civil.Date, string, []string) ([]string, error) {
	return nil, nil
}

func (icebergPartitions) CommitRun(context.Context, storage.Bucket, table.Run) error { return nil }

func (icebergPartitions) FoldersAreTable() bool { return false }
