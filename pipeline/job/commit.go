package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/civil"
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
	Spilled    bool       `json:"spilled,omitempty"`
	// Window is how long a reader listing the folder could see old and new
	// files together: from the first copy to the last delete.
	Window time.Duration `json:"window_ns"`
}

// Commit replaces date d's partition with the files its reduce tasks
// staged:
//
//  1. copy every staged file to its published name (part-NNNNN-<build>),
//     server-side where the store can, all at once;
//  2. delete every other object of the partition folder, all at once (the
//     files of earlier builds; the window owns its partitions);
//  3. delete the staged files, and record the commit.
//
// Between the first copy of step 1 and the last delete of step 2 a reader
// that lists the folder can see both the old and the new files; the steps
// run their requests in parallel so that this lasts about one round trip
// each, and Commit.Window records it. Readers never see a mix of the two
// builds under one name, nor a partition with rows missing: new files are
// complete before they get their names, and old files go only after every
// new one is in place.
//
// A crash or a retry at any point is repaired by the next attempt: a staged
// file still there is copied again (the same bytes), one already deleted
// has its published copy, and step 2 removes whatever remains of the old
// build. The task that commits the last date checks the step's books,
// records the bookmarks and ends the step (Next.Done).
func (s *Step) Commit(ctx context.Context, d civil.Date, dates int) (Next, error) {
	var bk buckets
	if err := storage.ReadJSON(ctx, s.Scratch, s.bucketsKey(), &bk); err != nil {
		return Next{}, err
	}
	ds, ok := bk.date(d)
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
	sum, err := s.finish(ctx, &bk)
	if err != nil {
		return next, err
	}
	next.Done = sum
	return next, nil
}

func (s *Step) commit(ctx context.Context, ds dateSplit) (*Commit, error) {
	c := &Commit{Date: ds.Date, InputBytes: ds.Bytes, MappedRows: ds.Rows}
	if err := storage.ReadJSON(ctx, s.Scratch, s.commitKey(ds.Date), c); err == nil {
		return c, nil // committed by an earlier attempt
	} else if !errors.Is(err, storage.ErrNotExist) {
		return nil, err
	}
	done := make([]reduceDone, ds.Files)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for b := range done {
		g.Go(func() error { return storage.ReadJSON(gctx, s.Scratch, s.reduceDoneKey(ds.Date, b), &done[b]) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	finals := make([]string, ds.Files)
	var keys, stagedKeys []string // the files' keys files, when a rebuild
	for b, rd := range done {
		finals[b] = s.fileKey(ds.Date, b)
		if rd.StagedKeys != "" {
			keys = append(keys, s.keysKey(ds.Date, b))
			stagedKeys = append(stagedKeys, rd.StagedKeys)
		}
		c.Rows += rd.Stats.Rows
		c.Duplicates += rd.Stats.Duplicates
		c.Bytes += rd.Stats.Bytes
		c.Spilled = c.Spilled || rd.Stats.Chunks > 1
	}
	c.Files = finals
	begin := time.Now()
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(16)
	publish := func(staged, final string) {
		g.Go(func() error {
			err := storage.Copy(gctx, s.Out, staged, final)
			if !errors.Is(err, storage.ErrNotExist) {
				return err
			}
			// An earlier attempt published it and deleted the staged file.
			if _, serr := s.Out.Stat(gctx, final); serr != nil {
				return fmt.Errorf("staged %s is gone and %s is not published: %w", staged, final, serr)
			}
			return nil
		})
	}
	for b, rd := range done {
		publish(rd.Staged, finals[b])
	}
	for i := range keys {
		publish(stagedKeys[i], keys[i])
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	removed, err := storage.DeleteStale(ctx, s.Out, transform.PartitionPath(ds.Date), func(k string) bool { return slices.Contains(finals, k) })
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
	staged := slices.Clone(stagedKeys)
	for _, rd := range done {
		staged = append(staged, rd.Staged)
	}
	if err := storage.DeleteKeys(ctx, s.Out, staged); err != nil {
		return nil, err
	}
	if err := storage.WriteJSON(ctx, s.Scratch, s.commitKey(ds.Date), c); err != nil {
		return nil, err
	}
	s.log().Info("partition committed", "date", ds.Date.String(), "files", len(finals), "rows", c.Rows, "removed", len(removed), "visibility_window", c.Window)
	return c, nil
}
