package job

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/civil"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/reduce"
	"sluice/pipeline/storage"
)

// sliceDone is a reduced slice: its sorted runs in scratch, one per column
// group, and its keys file waiting in staging for the partition's commit.
type sliceDone struct {
	Stats     reduce.SliceStats  `json:"stats"`
	Codec     string             `json:"codec"` // of the runs
	Runs      []reduce.RunRef    `json:"runs"`
	Keys      string             `json:"keys"`
	KeysIndex intermediate.Index `json:"keys_index"`
}

// Reduce reduces slice i of date d; the task that completes a row group's
// slices makes the row group's encode tasks ready.
func (s *Step) Reduce(ctx context.Context, d civil.Date, i int) (Next, error) {
	// A task delivered again after its date was committed (its worker died
	// between the barrier and asynq's acknowledgement) has nothing left to
	// do: the commit took its file.
	if done, err := s.committed(ctx, d); err != nil || done {
		if done {
			s.log().Info("reduce: the date is already committed", "date", d.String(), "slice", i)
		}
		return Next{}, err
	}
	var sp split
	if err := storage.ReadJSON(ctx, s.Scratch, s.splitKey(), &sp); err != nil {
		return Next{}, err
	}
	ds, ok := sp.date(d)
	rg := ds.rowGroupOfSlice(i)
	if !ok || rg < 0 {
		return Next{}, fmt.Errorf("reduce %s: no slice %d", d, i)
	}
	var doc sliceDoc
	if err := storage.ReadJSON(ctx, s.Scratch, s.sliceKey(d, i), &doc); err != nil {
		return Next{}, err
	}
	done, err := s.reduceSlice(ctx, doc.Input)
	if err != nil {
		return Next{}, err
	}
	if err := storage.WriteJSON(ctx, s.Scratch, s.sliceDoneKey(d, i), done); err != nil {
		return Next{}, err
	}
	next := Next{Reduced: &done.Stats}
	all, err := s.Barrier.Arrive(ctx, "reduce", d.String()+"/"+strconv.Itoa(i), doc.Reduces)
	if err != nil {
		return next, err
	}
	s.progress(ctx, "reduce %d/%d slices", all.Arrived, doc.Reduces)
	slices := ds.RowGroups[rg].Slices
	arr, err := s.Barrier.Arrive(ctx, fmt.Sprintf("reduce/%s/%d", d, rg), strconv.Itoa(i), slices[1]-slices[0])
	if err != nil {
		return next, err
	}
	if arr.Complete {
		k := len(ds.Groups)
		for g := range k {
			next.Encodes = append(next.Encodes, EncodeTask{Date: d, Fragment: rg*k + g, Fragments: ds.fragments()})
		}
	}
	return next, nil
}

// committed tells whether date d's partition is committed.
func (s *Step) committed(ctx context.Context, d civil.Date) (bool, error) {
	_, err := s.Scratch.Stat(ctx, s.commitKey(d))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, storage.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("commit record of %s: %w", d, err)
}

// reduceSlice runs reduce.Slice with its runs and keys going
// through local files, then uploads them.
func (s *Step) reduceSlice(ctx context.Context, in reduce.SliceInput) (sliceDone, error) {
	done := sliceDone{Keys: s.stagedKeysKey(in.Date, in.Slice), Codec: in.Codec}
	var temps []*tempFile
	defer func() {
		for _, t := range temps {
			t.remove()
		}
	}()
	newTemp := func() (*tempFile, error) {
		t, err := newTempFile(s.ReduceOptions.TempDir)
		if err != nil {
			return nil, fmt.Errorf("reduce %s: %w", in.Date, err)
		}
		temps = append(temps, t)
		return t, nil
	}
	rw := reduce.IO{Scratch: s.Scratch, Published: s.Out}
	for range in.Groups {
		t, err := newTemp()
		if err != nil {
			return done, err
		}
		rw.Runs = append(rw.Runs, t.w)
	}
	keys, err := newTemp()
	if err != nil {
		return done, err
	}
	rw.Keys = keys.w
	if done.Stats, err = reduce.Slice(ctx, rw, s.Spec, in, s.ReduceOptions); err != nil {
		return done, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	done.Runs = make([]reduce.RunRef, len(in.Groups))
	for grp := range in.Groups {
		key := s.runKey(in.Date, in.Slice, grp)
		done.Runs[grp] = reduce.RunRef{Key: key, Size: done.Stats.RunBytes[grp]}
		g.Go(func() error { return temps[grp].put(gctx, s.Scratch, key) })
	}
	g.Go(func() error { return keys.put(gctx, s.Out, done.Keys) })
	if err := g.Wait(); err != nil {
		return done, fmt.Errorf("reduce %s: %w", in.Date, err)
	}
	done.KeysIndex = done.Stats.KeysIndex
	return done, nil
}

// tempFile is a local file written through a buffer, then uploaded.
type tempFile struct {
	f *os.File
	w *bufio.Writer
}

func newTempFile(dir string) (*tempFile, error) {
	f, err := os.CreateTemp(dir, "sluice-reduce-*")
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	return &tempFile{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// put stores what was written under key in b (moving the file there when
// b is a folder on the same file system); the temp file is gone after.
func (t *tempFile) put(ctx context.Context, b storage.Bucket, key string) error {
	if err := t.w.Flush(); err != nil {
		return err
	}
	if err := storage.PutFile(ctx, b, key, t.f); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (t *tempFile) remove() {
	t.f.Close()
	os.Remove(t.f.Name())
}
