// Package table is the table format: how a job's output files become a
// table readers query. The file format (pipeline/format) says what a file
// holds; the table format says how a date's new files replace the old
// ones and how a run's partitions are registered for readers. Hive folders
// (Hive) are the table format of every job today; a format with metadata
// of its own (Iceberg) implements Format in a package of its own and a
// line in ByName.
package table

import (
	"context"
	"fmt"
	"slices"

	"sluice/pipeline/civil"
	"sluice/pipeline/storage"
)

// Format is one table format.
type Format interface {
	// Name is the format's name ("hive").
	Name() string
	// ReplacePartition is called once date d's new files (keys in out,
	// under the date's partition folder) are all in place: it makes them
	// the partition's content for readers and returns the objects it
	// removed. It is idempotent: a retry after a crash repeats it.
	ReplacePartition(ctx context.Context, out storage.Bucket, d civil.Date, folder string, files []string) (removed []string, err error)
	// CommitRun registers a run's replaced partitions for readers, once
	// every one of them is replaced, before the run's bookmarks are
	// recorded. It is idempotent.
	CommitRun(ctx context.Context, out storage.Bucket, run Run) error
	// FoldersAreTable tells whether a partition's folder holds exactly its
	// current files, so that files added or deleted by hand are drift the
	// next run repairs (Hive folders), or whether the table's metadata
	// says which files are current and the folders keep older ones
	// (Iceberg).
	FoldersAreTable() bool
}

// Run is what a run published.
type Run struct {
	ID         string
	Step       string
	Partitions []Partition
}

// Partition is one replaced partition: its date and its files.
type Partition struct {
	Date  civil.Date
	Files []string
}

// Hive is Hive-style partition folders (year=Y/month=M/date=D/): a
// partition is what its folder holds, so a date is replaced by deleting
// every other object of its folder once the new files are there, and
// readers see it as soon as it is; Athena's partition projection or the
// workflow's crawl step registers new partitions in the catalog.
type Hive struct{}

var _ Format = Hive{}

// Name is "hive".
func (Hive) Name() string { return "hive" }

// ReplacePartition deletes every object of folder but files: the files of
// earlier builds (the window owns its partitions).
func (Hive) ReplacePartition(ctx context.Context, out storage.Bucket, _ civil.Date, folder string, files []string) ([]string, error) {
	return storage.DeleteStale(ctx, out, folder, func(k string) bool { return slices.Contains(files, k) })
}

// CommitRun does nothing: readers list the folders.
func (Hive) CommitRun(context.Context, storage.Bucket, Run) error { return nil }

// FoldersAreTable is true.
func (Hive) FoldersAreTable() bool { return true }

// ByName is the table format called name ("" is Hive folders).
func ByName(name string) (Format, error) {
	switch name {
	case "", "hive":
		return Hive{}, nil
	}
	return nil, fmt.Errorf("%q is not a table format (hive)", name)
}
