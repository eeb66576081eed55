package job

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"sluice/pipeline/civil"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// reduceDone is a reduced file, waiting in staging for its partition's
// commit, with its keys file (none for a schema conversion, whose rows
// are those of the file it rewrites).
type reduceDone struct {
	Stats      transform.BucketStats `json:"stats"`
	Staged     string                `json:"staged"`
	StagedKeys string                `json:"staged_keys,omitempty"`
}

// Reduce builds file bucket of buckets of date d into the output's staging
// area; the task that completes the date makes its commit ready.
func (s *Step) Reduce(ctx context.Context, d civil.Date, bucket, buckets int) (Next, error) {
	// A task delivered again after its date was committed (its worker died
	// between the barrier and asynq's acknowledgement) has nothing left to
	// do: the commit took its file, and a schema conversion's source file
	// is gone.
	if _, err := s.Scratch.Stat(ctx, s.commitKey(d)); err == nil {
		s.log().Info("reduce: the date is already committed", "date", d.String(), "file", bucket)
		return Next{}, nil
	} else if !errors.Is(err, storage.ErrNotExist) {
		return Next{}, fmt.Errorf("reduce %s: %w", d, err)
	}
	var doc reduceDoc
	if err := storage.ReadJSON(ctx, s.Scratch, s.reduceKey(d, bucket), &doc); err != nil {
		return Next{}, err
	}
	file, err := newTempFile(s.ReduceOptions.TempDir)
	if err != nil {
		return Next{}, fmt.Errorf("reduce %s: %w", d, err)
	}
	defer file.remove()
	var st transform.BucketStats
	done := reduceDone{Staged: s.stagedKey(d, bucket)}
	var keys *tempFile
	if cv := doc.Convert; cv != nil {
		st, err = transform.ConvertFile(ctx, s.Out, cv.Key, cv.Size, s.Spec, doc.Input.Columns, file.w, s.ReduceOptions)
		st.Date, st.Bucket = d, bucket
	} else {
		if keys, err = newTempFile(s.ReduceOptions.TempDir); err != nil {
			return Next{}, fmt.Errorf("reduce %s: %w", d, err)
		}
		defer keys.remove()
		rw := transform.ReduceIO{Scratch: s.Scratch, Published: s.Out, File: file.w, Keys: keys.w}
		st, err = transform.ReduceBucket(ctx, rw, s.Spec, doc.Input, s.ReduceOptions)
		done.StagedKeys = done.Staged + ".keys"
	}
	if err != nil {
		return Next{}, err
	}
	done.Stats = st
	if err := file.put(ctx, s.Out, done.Staged); err != nil {
		return Next{}, fmt.Errorf("reduce %s: %w", d, err)
	}
	if keys != nil {
		if err := keys.put(ctx, s.Out, done.StagedKeys); err != nil {
			return Next{}, fmt.Errorf("reduce %s: %w", d, err)
		}
	}
	if err := storage.WriteJSON(ctx, s.Scratch, s.reduceDoneKey(d, bucket), done); err != nil {
		return Next{}, err
	}
	next := Next{Reduced: &st}
	all, err := s.Barrier.Arrive(ctx, "reduce", d.String()+"/"+strconv.Itoa(bucket), doc.Reduces)
	if err != nil {
		return next, err
	}
	s.progress(ctx, "reduce %d/%d files", all.Arrived, doc.Reduces)
	arr, err := s.Barrier.Arrive(ctx, "reduce/"+d.String(), strconv.Itoa(bucket), buckets)
	if err != nil {
		return next, err
	}
	if arr.Complete {
		next.Commits, next.CommitTotal = []civil.Date{d}, doc.Dates
	}
	return next, nil
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
	return &tempFile{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// put uploads what was written to key in b.
func (t *tempFile) put(ctx context.Context, b storage.Bucket, key string) error {
	if err := t.w.Flush(); err != nil {
		return err
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := b.Put(ctx, key, t.f); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (t *tempFile) remove() {
	t.f.Close()
	os.Remove(t.f.Name())
}
