package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/civil"
	"sluice/pipeline/format"
	"sluice/pipeline/icetable"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// Commit is one partition's replacement, as the commit recorded it.
type Commit struct {
	Date       civil.Date `json:"date"`
	Files      []string   `json:"files"` // the partition's files now
	Rows       int64      `json:"rows"`
	MappedRows int64      `json:"mapped_rows"` // before deduplication
	Duplicates int64      `json:"duplicates"`
	Bytes      int64      `json:"bytes"`       // of the files
	InputBytes int64      `json:"input_bytes"` // row records they were reduced from
	Removed    []string   `json:"removed,omitempty"`
	// Iceberg describes the files for the table's manifest, when the job
	// writes an Iceberg table (see iceberg.go).
	Iceberg []icetable.DataFile `json:"iceberg,omitempty"`
	Spilled bool                `json:"spilled,omitempty"`
	// Window is how long a reader listing the folder could see old and new
	// files together: from the first copy to the last delete.
	Window time.Duration `json:"window_ns"`
}

// Commit replaces date d's partition with the files assembled from its
// fragments:
//
//  1. compose every file at its published name (part-NNNNN-<build>) from
//     its fragments, and its keys file from its slices' (storage.Compose:
//     on S3 a multipart upload whose parts are server-side copies, on a
//     folder a copy_file_range into a file renamed into place), all at
//     once; a schema conversion's whole files are copied;
//  2. replace the partition (table.Format.ReplacePartition: for Hive
//     folders, delete every other object of the partition folder, all at
//     once, the files of earlier builds; the window owns its partitions);
//  3. delete the fragments and staged keys files, and record the commit.
//
// Between the first file of step 1 and the last delete of step 2 a
// reader that lists the folder can see both the old and the new files;
// the steps run their requests in parallel so that this lasts about one
// round of composes and one of deletes, and Commit.Window records it.
// Readers never see a mix of the two builds under one name, nor a
// partition with rows missing: a new file appears whole (a completed
// multipart upload, a rename), and old files go only after every new one
// is in place.
//
// A crash or a retry at any point is repaired by the next attempt: a file
// whose fragments are all still there is composed again (the same
// bytes); fragments go only after every file is composed, so one that is
// gone means its file is published; step 2 removes whatever remains of
// the old build. The task that commits the last date checks the step's
// books, records the bookmarks and ends the step (Next.Done).
func (s *Step) Commit(ctx context.Context, d civil.Date, dates int) (Next, error) {
	var sp split
	if err := storage.ReadJSON(ctx, s.Scratch, s.splitKey(), &sp); err != nil {
		return Next{}, err
	}
	ds, ok := sp.date(d)
	if !ok {
		return Next{}, fmt.Errorf("commit %s: not a date of this step", d)
	}
	c, err := s.commit(ctx, ds)
	if err != nil {
		return Next{}, fmt.Errorf("commit %s: %w", d, err)
	}
	next := Next{Committed: c}
	arr, err := s.Barrier.Arrive(ctx, "commit", d.String(), dates)
	if err != nil {
		return next, err
	}
	s.progress(ctx, "commit %d/%d partitions", arr.Arrived, dates)
	if !arr.Complete {
		return next, nil
	}
	sum, err := s.finish(ctx, &sp)
	if err != nil {
		return next, err
	}
	next.Done = sum
	return next, nil
}

// builtFile is one file of a partition's new build: its published name,
// what it is made of, and its keys file.
type builtFile struct {
	final  string
	blocks [][]format.FragmentRef // assembled; or
	whole  string                 // a converted file, copied as it is
	size   int64
	keys   string
	keysOf []storage.Section // the slices' keys files
	keysIx []intermediate.Index
	// iceberg is the file's description for an Iceberg table's manifest.
	iceberg icetable.DataFile
}

func (s *Step) commit(ctx context.Context, ds dateSplit) (*Commit, error) {
	c := &Commit{Date: ds.Date, InputBytes: ds.Bytes, MappedRows: ds.Rows}
	if err := storage.ReadJSON(ctx, s.Scratch, s.commitKey(ds.Date), c); err == nil {
		return c, nil // committed by an earlier attempt
	} else if !errors.Is(err, storage.ErrNotExist) {
		return nil, err
	}
	files, staged, err := s.builtFiles(ctx, ds, c)
	if err != nil {
		return nil, err
	}
	ff, err := s.Spec.FileFormat()
	if err != nil {
		return nil, err
	}
	var ids map[string]int // the Iceberg table's field ids
	if s.Table != nil {
		if ids, err = s.Table.EnsureColumns(ctx, icebergColumns(ds.Columns)); err != nil {
			return nil, err
		}
	}
	begin := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range files {
		g.Go(func() (err error) {
			files[i].size, err = s.publishFile(gctx, ff, ds.Date, ids, &files[i])
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	finals, keys := make([]string, len(files)), []string{}
	for i, f := range files {
		finals[i] = f.final
		if f.keys != "" {
			keys = append(keys, f.keys)
		}
		c.Bytes += f.size
		if ids != nil {
			c.Iceberg = append(c.Iceberg, f.iceberg)
		}
	}
	c.Files = finals
	removed, err := s.tableFormat().ReplacePartition(ctx, s.Out, ds.Date, transform.PartitionPath(ds.Date), finals)
	if err != nil {
		return nil, err
	}
	if !ds.Convert {
		// The keys of the files just replaced go with them; a conversion
		// keeps the rows, and so the keys files, it found.
		if _, err := storage.DeleteStale(ctx, s.Out, s.keysDir(ds.Date), func(k string) bool { return slices.Contains(keys, k) }); err != nil {
			return nil, err
		}
	}
	if len(finals) > 0 || len(removed) > 0 {
		c.Window = time.Since(begin)
	}
	c.Removed = removed
	if err := storage.DeleteKeys(ctx, s.Out, staged); err != nil {
		return nil, err
	}
	if err := storage.WriteJSON(ctx, s.Scratch, s.commitKey(ds.Date), c); err != nil {
		return nil, err
	}
	s.log().Info("partition committed", "date", ds.Date.String(), "files", len(finals), "rows", c.Rows, "removed", len(removed), "visibility_window", c.Window)
	return c, nil
}

// builtFiles reads what the reduce and encode tasks of a date left: the
// files to publish and the staged objects they are made of. It fills c's
// row counts.
func (s *Step) builtFiles(ctx context.Context, ds dateSplit, c *Commit) ([]builtFile, []string, error) {
	frags := make([]fragmentDone, ds.fragments())
	slicesDone := make([]sliceDone, ds.Slices)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range frags {
		g.Go(func() error { return storage.ReadJSON(gctx, s.Scratch, s.fragmentDoneKey(ds.Date, i), &frags[i]) })
	}
	for i := range slicesDone {
		g.Go(func() error { return storage.ReadJSON(gctx, s.Scratch, s.sliceDoneKey(ds.Date, i), &slicesDone[i]) })
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var staged []string
	for _, f := range frags {
		staged = append(staged, f.Staged)
	}
	if ds.Convert {
		files := make([]builtFile, len(frags))
		for i, f := range frags {
			files[i] = builtFile{final: s.fileKey(ds.Date, i), whole: f.Staged, size: f.Stats.Bytes}
			c.Rows += f.Stats.Rows
		}
		return files, staged, nil
	}
	for _, sd := range slicesDone {
		c.Rows += sd.Stats.Rows
		c.Duplicates += sd.Stats.Duplicates
		c.Spilled = c.Spilled || sd.Stats.Chunks > 1
		staged = append(staged, sd.Keys)
	}
	files := make([]builtFile, ds.Files)
	for i := range files {
		files[i] = builtFile{final: s.fileKey(ds.Date, i), keys: s.keysKey(ds.Date, i)}
	}
	k := len(ds.Groups)
	for r, rg := range ds.RowGroups {
		f := &files[rg.File]
		block := make([]format.FragmentRef, k)
		for g := range k {
			fd := frags[r*k+g]
			block[g] = format.FragmentRef{Key: fd.Staged, Size: fd.Stats.Bytes}
		}
		f.blocks = append(f.blocks, block)
		for i := rg.Slices[0]; i < rg.Slices[1]; i++ {
			sd := slicesDone[i]
			f.keysOf = append(f.keysOf, storage.Section{Key: sd.Keys, Length: sd.KeysIndex.Offset[intermediate.VBuckets]})
			f.keysIx = append(f.keysIx, sd.KeysIndex)
		}
	}
	return files, staged, nil
}

// publishFile composes (or copies) one file and its keys file at their
// published names, and returns the file's size. A source already gone
// means an earlier attempt published them and went on to delete the
// staged objects. For an Iceberg table (ids, its field ids, set) the file
// is assembled with field ids and described in f.iceberg.
func (s *Step) publishFile(ctx context.Context, ff format.Format, d civil.Date, ids map[string]int, f *builtFile) (int64, error) {
	size := f.size
	gone := func(err error) (int64, error) {
		if !errors.Is(err, storage.ErrNotExist) {
			return 0, err
		}
		info, serr := s.Out.Stat(ctx, f.final)
		if serr != nil {
			return 0, fmt.Errorf("a fragment of %s is gone and the file is not published: %w", f.final, serr)
		}
		if ids != nil {
			if f.iceberg, err = s.icebergDescribe(ctx, d, ids, f.final, info.Size); err != nil {
				return 0, err
			}
		}
		return info.Size, nil
	}
	var sections []storage.Section
	var err error
	switch {
	case ids != nil:
		sections, f.iceberg, err = s.icebergAssemble(ctx, d, ids, *f)
	case f.whole != "":
		if err := storage.Copy(ctx, s.Out, f.whole, f.final); err != nil {
			return gone(err)
		}
		return size, nil
	default:
		sections, err = ff.Assemble(ctx, s.Out, s.Spec.FormatOptions(), f.blocks)
	}
	if err != nil {
		return gone(err)
	}
	size = 0
	for _, sec := range sections {
		size += sec.Size()
	}
	if err := storage.Compose(ctx, s.Out, f.final, sections); err != nil {
		return gone(err)
	}
	if f.keys == "" {
		return size, nil
	}
	tail, err := intermediate.AssembleKeys(f.keysIx)
	if err != nil {
		return 0, err
	}
	if err := storage.Compose(ctx, s.Out, f.keys, append(slices.Clone(f.keysOf), storage.Section{Data: tail})); err != nil {
		return gone(err)
	}
	return size, nil
}
