package job

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/fault"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// PlanOptions tune how the plan cuts the input into map shards.
type PlanOptions struct {
	// Slots is the number of transform tasks the live fleet runs at once
	// (the sum of the concurrency of the workers serving the transform
	// queue); 0 when unknown.
	Slots int
	// MinTasks is the fewest map tasks an input large enough for them is
	// cut into, whatever the live fleet: with autoscaling from zero the
	// plan sees few workers, and more arrive while it runs (default
	// DefaultMinMapTasks).
	MinTasks int
	// MinShardBytes is the smallest shard the plan cuts (compressed input),
	// so that a task's fixed costs stay small beside its work (default
	// DefaultMinShardBytes). The job's shard_bytes is the largest.
	MinShardBytes int64
	// SliceBytes is the size of a reduce task's slice, in
	// reduce.RowCost (default DefaultSliceBytes). A worker with less
	// task memory reduces a slice a chunk at a time, on disk. Slices
	// change no byte of the output.
	SliceBytes int64
	// MinGroupBytes is the fewest row-record bytes of a row group one
	// column group (encode task) is cut for (default
	// DefaultMinGroupBytes).
	MinGroupBytes int64
}

// Planner defaults.
const (
	DefaultMinMapTasks   = 16
	DefaultMinShardBytes = 8 << 20
	// tasksPerSlot: each slot gets about this many map tasks, so unequal
	// shards and slower workers even out.
	tasksPerSlot = 4
)

// lookbackDays is how many received-day folders before the window start are
// read: a local date D starts at most a day before D in UTC for any zone
// west of UTC+14, and events are never received before they happen.
const lookbackDays = 1

// plan is what the plan phase decided, kept in scratch: its presence means
// every shard file exists, so a retried plan task reuses it instead of
// listing again (new input arriving meanwhile must not renumber shards that
// map tasks have already processed).
type plan struct {
	Shards     int   `json:"shards"`
	ShardBytes int64 `json:"shard_bytes"` // the size the shards were cut at
	Slots      int   `json:"slots"`       // the live fleet's slots when planned
	Objects    int   `json:"objects"`
	Bytes      int64 `json:"bytes"` // compressed input to read
	// Dates are the partitions to rebuild; Rebuild says why each is.
	Dates   []civil.Date      `json:"dates"`
	Rebuild map[string]string `json:"rebuild"`
	// Skipped are the window's partitions whose input is unchanged since
	// their last build.
	Skipped []string `json:"skipped,omitempty"`
	// Builds are the last build records of the dates to rebuild, for the
	// shrink guard and the output size estimate.
	Builds map[string]bookmark.Build `json:"builds,omitempty"`
	// Vanished are, per date to rebuild, the inputs of its last build the
	// listing no longer holds (see the vanished-input guard in decide).
	Vanished map[string][]string `json:"vanished,omitempty"`
}

// Plan lists the window's input, asks the bookmarks which partitions need
// rebuilding, and writes the shards of the objects to read: shard files
// first, the plan last. It refuses (permanently) a run whose input listing
// is empty while partitions of the window are published, which is what a
// mistyped input location looks like, unless AllowShrink is set.
func (s *Step) Plan(ctx context.Context) (Next, error) {
	var p plan
	err := storage.ReadJSON(ctx, s.Scratch, s.planKey(), &p)
	if errors.Is(err, storage.ErrNotExist) {
		if p, err = s.plan(ctx); err != nil {
			return Next{}, err
		}
		s.log().Info("transform planned", "shards", p.Shards, "shard_bytes", p.ShardBytes, "slots", p.Slots,
			"input_objects", p.Objects, "input_bytes", p.Bytes, "rebuild", p.Rebuild, "skipped", p.Skipped)
	} else if err != nil {
		return Next{}, err
	}
	if len(p.Dates) == 0 {
		sc, err := schema.NewStore(s.Out).Load(ctx)
		if err != nil {
			return Next{}, err
		}
		if sc.Converted >= sc.Version {
			sum := &Summary{Skipped: p.Skipped, Balanced: true,
				Reconciliation: "nothing to do: every partition's input is unchanged since its last build (rebuild them anyway with -force)"}
			return Next{Done: sum}, nil
		}
		// Nothing to rebuild, but files to convert to a widened schema
		// (a run that had to leave them to a later one): the bucket
		// phase does that.
		return Next{Split: true}, nil
	}
	s.progress(ctx, "map 0/%d shards", p.Shards)
	if p.Shards == 0 {
		return Next{Split: true}, nil
	}
	return Next{Maps: p.Shards}, nil
}

func (s *Step) plan(ctx context.Context) (plan, error) {
	p, shards, _, err := s.decide(ctx)
	if err != nil {
		return p, err
	}
	for _, sh := range shards {
		if err := storage.WriteJSON(ctx, s.Scratch, s.shardKey(sh.Index), sh); err != nil {
			return p, err
		}
	}
	return p, storage.WriteJSON(ctx, s.Scratch, s.planKey(), p)
}

// decide is the planner: it lists the input, asks the bookmarks, applies
// the shrink guard to an empty listing and cuts the shards, writing
// nothing (DryRun shows what it decides). It also returns the last build
// of every partition of the window that has one.
func (s *Step) decide(ctx context.Context) (plan, []transform.Shard, map[string]bookmark.Build, error) {
	var p plan
	candidates, err := s.listInput(ctx)
	if err != nil {
		return p, nil, nil, err
	}
	keys := make([]string, len(candidates))
	for i, o := range candidates {
		keys[i] = o.Key
	}
	dates := s.Window.Dates()
	names := make([]string, len(dates))
	for i, d := range dates {
		names[i] = d.String()
	}
	known, err := s.Bookmarks.Objects(ctx, keys)
	if err != nil {
		return p, nil, nil, err
	}
	builds, err := s.Bookmarks.Builds(ctx, names)
	if err != nil {
		return p, nil, nil, err
	}
	if len(candidates) == 0 && len(builds) > 0 && !s.AllowShrink {
		return p, nil, nil, fault.Permanent(fmt.Errorf("the input %s holds no objects for the window %s under %s, but partitions %s are published: refusing to empty them (check the job's input location; start with -allow-shrink to empty them on purpose)",
			s.In.Location(), s.Window, sourcePaths(s.Spec), strings.Join(slices.Sorted(maps.Keys(builds)), ", ")))
	}
	var drifted map[string]bool
	if !s.Force {
		if drifted, err = s.driftedPartitions(ctx, builds); err != nil {
			return p, nil, nil, err
		}
	}
	decision := bookmark.Decide(dates, candidates, known, builds, s.SpecID, s.Force, drifted)
	p.Rebuild, p.Skipped = decision.Rebuild, decision.Skip
	p.Builds = map[string]bookmark.Build{}
	for _, d := range dates {
		if _, ok := decision.Rebuild[d.String()]; ok {
			p.Dates = append(p.Dates, d)
			if b, ok := builds[d.String()]; ok {
				p.Builds[d.String()] = b
			}
		}
	}
	for _, o := range decision.Objects {
		p.Bytes += o.Size
	}
	p.Objects = len(decision.Objects)
	p.Slots = s.PlanOptions.Slots
	p.ShardBytes = s.shardBytes(p.Bytes)
	shards := CutShards(decision.Objects, p.ShardBytes)
	p.Shards = len(shards)
	p.Vanished = bookmark.Vanished(p.Builds, candidates)
	if len(p.Vanished) > 0 && !s.AllowShrink {
		return p, nil, builds, fault.Permanent(s.vanishedError(p.Vanished, p.Builds))
	}
	return p, shards, builds, nil
}

// maxNamed bounds how many vanished objects an error names.
const maxNamed = 10

// vanishedError refuses to rebuild partitions from fewer input objects
// than their last build read. Raw logs are append-only: an object that
// vanished is a lifecycle rule that expired raw data, a wrong prefix or a
// deletion by hand, and rebuilding without it would quietly delete rows of
// history, which the shrink guard's row ratio lets through when the loss
// is small.
func (s *Step) vanishedError(vanished map[string][]string, builds map[string]bookmark.Build) error {
	var parts []string
	unique := map[string]bool{}
	for _, date := range slices.Sorted(maps.Keys(vanished)) {
		parts = append(parts, fmt.Sprintf("%s lost %d of its %d", date, len(vanished[date]), len(builds[date].Inputs)))
		for _, k := range vanished[date] {
			unique[k] = true
		}
	}
	all := slices.Sorted(maps.Keys(unique))
	named, more := all[:min(len(all), maxNamed)], ""
	if len(all) > len(named) {
		more = fmt.Sprintf(" and %d more", len(all)-len(named))
	}
	return fmt.Errorf("refusing to rebuild partitions from fewer input objects than their last build read (%s): the input %s no longer holds %d of them: %s%s; restore them (a lifecycle rule that expired raw data? a wrong prefix?), or start with -allow-shrink to rebuild without them",
		strings.Join(parts, ", "), s.In.Location(), len(all), strings.Join(named, ", "), more)
}

// driftedPartitions lists the folder of every window date with a build and
// returns the dates whose data files are not exactly the files the build
// recorded: what a commit cut short leaves (new files beside old ones), or
// files deleted or added by hand. They are rebuilt even when their input
// is unchanged. Builds recorded without files (before they were kept) are
// not checked. One LIST per date.
//
// An Iceberg table's folders keep the files of earlier snapshots, and a
// commit cut short leaves its snapshot as it was (and the bookmarks
// unrecorded): there is no drift to look for (FoldersAreTable is false).
func (s *Step) driftedPartitions(ctx context.Context, builds map[string]bookmark.Build) (map[string]bool, error) {
	drifted := map[string]bool{}
	if !s.tableFormat().FoldersAreTable() {
		return drifted, nil // the table's metadata, not its folders, says which files are current
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, d := range s.Window.Dates() {
		b, ok := builds[d.String()]
		if !ok || len(b.Files) == 0 {
			continue
		}
		g.Go(func() error {
			var files []string
			err := s.Out.List(gctx, transform.PartitionPath(d), func(oi storage.ObjectInfo) error {
				if name := path.Base(oi.Key); !strings.HasPrefix(name, "_") && !strings.HasPrefix(name, ".") {
					files = append(files, oi.Key)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("list partition %s: %w", d, err)
			}
			slices.Sort(files)
			if !slices.Equal(files, slices.Sorted(slices.Values(b.Files))) {
				mu.Lock()
				drifted[d.String()] = true
				mu.Unlock()
			}
			return nil
		})
	}
	return drifted, g.Wait()
}

// shardBytes sizes the map shards for input bytes of compressed input: about
// tasksPerSlot tasks per live slot, at least MinTasks tasks, but no shard
// smaller than MinShardBytes (a task's fixed costs) or larger than the
// job's shard_bytes (a task's memory and retry cost).
func (s *Step) shardBytes(input int64) int64 {
	o := s.PlanOptions
	if o.MinTasks <= 0 {
		o.MinTasks = DefaultMinMapTasks
	}
	if o.MinShardBytes <= 0 {
		o.MinShardBytes = DefaultMinShardBytes
	}
	tasks := int64(max(o.Slots*tasksPerSlot, o.MinTasks))
	size := max(input/tasks, o.MinShardBytes)
	return min(size, s.Spec.ShardBytes)
}

// listInput lists every received-day folder of every source from the UTC
// day before the window's start up to the newest, because late events may
// arrive any time after their date. Folders whose name is not an
// epoch-milliseconds number, and objects not ending in ".gz", are ignored.
// The result depends only on the listing, in key order.
func (s *Step) listInput(ctx context.Context) ([]transform.Object, error) {
	cutoff := s.Window.Start.AddDays(-lookbackDays).UTCMidnight().UnixMilli()
	seen := map[string]bool{}
	var objs []transform.Object
	for _, src := range s.Spec.Sources {
		prefix := src.Path
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		dirs, err := s.In.ListDirs(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, dir := range dirs {
			ms, err := strconv.ParseInt(path.Base(dir), 10, 64)
			if err != nil || ms < cutoff {
				continue
			}
			err = s.In.List(ctx, dir, func(oi storage.ObjectInfo) error {
				if !strings.HasSuffix(oi.Key, ".gz") || seen[oi.Key] {
					return nil
				}
				seen[oi.Key] = true
				objs = append(objs, transform.Object{Source: src.Name, Key: oi.Key, Size: oi.Size, ETag: oi.ETag})
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", dir, err)
			}
		}
	}
	slices.SortFunc(objs, func(a, b transform.Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

// CutShards sorts objects by key and cuts them into shards of about
// shardBytes compressed bytes (an object is never split; a shard holds at
// least one object). Shards are contiguous in key order, so (shard, object,
// line) orders lines as (object key, line) does.
func CutShards(objs []transform.Object, shardBytes int64) []transform.Shard {
	objs = slices.Clone(objs)
	slices.SortFunc(objs, func(a, b transform.Object) int { return strings.Compare(a.Key, b.Key) })
	var shards []transform.Shard
	var cur transform.Shard
	var curBytes int64
	for _, o := range objs {
		if len(cur.Objects) > 0 && curBytes+o.Size > shardBytes {
			shards = append(shards, cur)
			cur = transform.Shard{Index: len(shards)}
			curBytes = 0
		}
		cur.Objects = append(cur.Objects, o)
		curBytes += o.Size
	}
	if len(cur.Objects) > 0 {
		shards = append(shards, cur)
	}
	return shards
}

func sourcePaths(spec transform.Spec) string {
	var ps []string
	for _, src := range spec.Sources {
		ps = append(ps, src.Path)
	}
	return strings.Join(ps, ", ")
}
