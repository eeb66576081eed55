package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"

	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/icetable"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/storage"
	"sluice/pipeline/table"
	"sluice/pipeline/transform"
)

// Step is one job step of one run at work, with what its phases need
// (its definition in the workflow file is a workflow.StepSpec).
type Step struct {
	RunID string
	Name  string // the step's name in the workflow
	Spec  transform.Spec
	// SpecID identifies the job's configuration for the bookmarks (see
	// bookmark.SpecHash): a new one rebuilds every partition.
	SpecID string
	Window civil.Window
	// Force rebuilds every partition of the window, bookmarks
	// notwithstanding.
	Force bool
	// AllowShrink lets the run replace partitions with far fewer rows than
	// they were built from (see the shrink guard in Split); without it
	// such a run fails before it changes any published file.
	AllowShrink bool

	In  storage.Reader
	Out storage.Bucket
	// Table, when set, is the Iceberg table the step publishes its
	// output as (iceberg.go); nil publishes Hive folders.
	Table   *icetable.Table
	Scratch storage.Bucket
	// Bookmarks are the job's object index and build records (in Out).
	Bookmarks *bookmark.Store
	Barrier   Barrier
	// ClaimTable, when set, is called before a schema conversion rewrites
	// partitions outside the run's window: it must keep any other run of
	// the job from starting until this run ends, and return the windows
	// of the runs already running, atomically with the claim. Their
	// partitions are theirs; the conversion leaves them alone (see
	// planConversions).
	ClaimTable func(ctx context.Context) ([]civil.Window, error)
	// Progress, when set, receives a line about the step's progress for
	// people to read; it is advisory.
	Progress func(ctx context.Context, line string)
	Log      *slog.Logger

	MapOptions    mapper.Options
	ReduceOptions reduce.Options
	PlanOptions   PlanOptions
	// TableFormat publishes the step's partitions for readers; nil is
	// Hive folders (table.Hive).
	TableFormat table.Format
}

// tableFormat is the step's table format.
func (s *Step) tableFormat() table.Format {
	switch {
	case s.Table != nil:
		return icebergPartitions{}
	case s.TableFormat == nil:
		return table.Hive{}
	}
	return s.TableFormat
}

// Barrier is where the tasks of a phase meet: each reports its arrival
// once it has finished, and exactly one arrival learns that it completed
// the phase, however often tasks are retried or delivered. Phase names are
// relative to the step ("map", "reduce/2026-10-31", "commit").
type Barrier interface {
	Arrive(ctx context.Context, phase, member string, total int) (Arrival, error)
}

// Arrival is what one task learns when it arrives.
type Arrival struct {
	Arrived  int  // distinct members arrived so far, this one included
	Complete bool // every member has arrived
	// First is true for exactly one arrival: the one that completed the
	// phase. Later arrivals (duplicates, retries) see Complete but not
	// First, and enqueue the follow-ons again, which is harmless.
	First bool
}

// Next is the work a phase made ready, for the caller to enqueue, or the
// step's end.
type Next struct {
	Maps    int  // map tasks 0 .. Maps-1
	Split   bool // the split task, over Shards map shards
	Shards  int
	Reduces []ReduceTask // reduce tasks
	Encodes []EncodeTask // encode tasks
	Commits []civil.Date // commit tasks, out of CommitTotal
	// CommitTotal is the number of dates the step commits (for the commit
	// tasks' barrier).
	CommitTotal int
	// Done, when set, means the step succeeded with this summary: record
	// it, then call Cleanup.
	Done *Summary

	// What the phase did, for metrics: a map's statistics, a reduced
	// slice's, an encoded fragment's, a committed partition.
	Mapped    *mapper.Stats
	Reduced   *reduce.SliceStats
	Encoded   *reduce.FragmentStats
	Committed *Commit
}

// ReduceTask names one reduce task: slice Slice of a date.
type ReduceTask struct {
	Date  civil.Date
	Slice int
}

// EncodeTask names one encode task: fragment Fragment of the Fragments of
// a date.
type EncodeTask struct {
	Date      civil.Date
	Fragment  int
	Fragments int
}

func (s *Step) progress(ctx context.Context, format string, args ...any) {
	if s.Progress != nil {
		s.Progress(ctx, fmt.Sprintf(format, args...))
	}
}

func (s *Step) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log.With("run", s.RunID, "step", s.Name)
}

// The step's layout. In scratch, below prefix():
//
//	plan.json                        the plan, written last (plan done)
//	plan/shard-NNNNN.json            the objects of each shard
//	map/shard-NNNNN/                 a mapped shard (mapper.MapShard)
//	split.json                       the split of each date, written last
//	reduce/date=D/slice-NNNNN.json   one reduce task's input
//	reduce/date=D/slice-NNNNN/       its sorted runs, one per column group
//	reduce/date=D/slice-NNNNN.done.json  its result
//	encode/date=D/fragment-NNNNN.done.json  an encoded fragment
//	commit/date=D.json               a committed partition
//
// In the output, below _staging/<run>/<step>/date=D/, the fragments and
// the slices' keys files wait for their partition's commit.

func (s *Step) prefix() string        { return s.RunID + "/" + s.Name + "/" }
func (s *Step) planKey() string       { return s.prefix() + "plan.json" }
func (s *Step) shardKey(i int) string { return fmt.Sprintf("%splan/shard-%05d.json", s.prefix(), i) }
func (s *Step) shardDir(i int) string { return fmt.Sprintf("%smap/shard-%05d/", s.prefix(), i) }
func (s *Step) splitKey() string      { return s.prefix() + "split.json" }
func (s *Step) commitKey(d civil.Date) string {
	return s.prefix() + "commit/date=" + d.String() + ".json"
}

func (s *Step) sliceKey(d civil.Date, i int) string {
	return fmt.Sprintf("%sreduce/date=%s/slice-%05d.json", s.prefix(), d, i)
}

func (s *Step) sliceDoneKey(d civil.Date, i int) string {
	return fmt.Sprintf("%sreduce/date=%s/slice-%05d.done.json", s.prefix(), d, i)
}

func (s *Step) runKey(d civil.Date, slice, group int) string {
	return fmt.Sprintf("%sreduce/date=%s/slice-%05d/group-%03d.run", s.prefix(), d, slice, group)
}

func (s *Step) fragmentDoneKey(d civil.Date, f int) string {
	return fmt.Sprintf("%sencode/date=%s/fragment-%05d.done.json", s.prefix(), d, f)
}

func (s *Step) stagingPrefix() string { return "_staging/" + s.RunID + "/" + s.Name + "/" }

func (s *Step) stagedDir(d civil.Date) string { return s.stagingPrefix() + "date=" + d.String() + "/" }

func (s *Step) fragmentKey(d civil.Date, f int) string {
	return fmt.Sprintf("%sfragment-%05d.%s", s.stagedDir(d), f, s.Spec.FileExt())
}

func (s *Step) stagedKeysKey(d civil.Date, slice int) string {
	return fmt.Sprintf("%sslice-%05d.keys", s.stagedDir(d), slice)
}

// fileKey is the published name of file b of date d. The build token (a
// hash of the run and step) makes this build's files distinct from every
// other build's, so a commit can tell its files from the old ones, and a
// reader listing the folder mid-commit sees whole builds, never a file of
// one build under the name of another's.
func (s *Step) fileKey(d civil.Date, b int) string {
	return fmt.Sprintf("%spart-%05d-%s.%s", transform.PartitionPath(d), b, s.buildToken(), s.Spec.FileExt())
}

// keysDir holds the keys files (intermediate.KeysWriter) of date d's
// published files; keysKey is file b's.
func (s *Step) keysDir(d civil.Date) string {
	return "_sluice/keys/" + s.Name + "/date=" + d.String() + "/"
}

func (s *Step) keysKey(d civil.Date, b int) string {
	return fmt.Sprintf("%spart-%05d-%s.keys", s.keysDir(d), b, s.buildToken())
}

func (s *Step) buildToken() string {
	h := sha256.Sum256([]byte(s.RunID + "/" + s.Name))
	return hex.EncodeToString(h[:6])
}

// QuarantineDir is the output folder of one run's quarantine:
// _errors/window=<start>_<end>/run=<run>/ (ignored by Athena and Hive
// readers, as it starts with "_"). Each run keeps its own folder: a run
// that reads only part of the window's input (bookmarks) must not erase
// what an earlier run quarantined from the rest.
func (s *Step) QuarantineDir() string {
	return "_errors/window=" + s.Window.Start.String() + "_" + s.Window.End.String() + "/run=" + s.RunID + "/"
}

// Cleanup deletes the step's scratch objects and staged files, which are
// only needed until the step has succeeded (or will not be retried).
func (s *Step) Cleanup(ctx context.Context) error {
	if err := storage.DeletePrefix(ctx, s.Scratch, s.prefix()); err != nil {
		return fmt.Errorf("clean scratch of %s: %w", s.prefix(), err)
	}
	if err := storage.DeletePrefix(ctx, s.Out, s.stagingPrefix()); err != nil {
		return fmt.Errorf("clean staging of %s: %w", s.prefix(), err)
	}
	return nil
}
