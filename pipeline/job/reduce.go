package job

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"sluice/pipeline/civil"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// reduceDone is a reduced file, waiting in staging for its partition's
// commit.
type reduceDone struct {
	Stats  transform.BucketStats `json:"stats"`
	Staged string                `json:"staged"`
}

// Reduce builds file bucket of buckets of date d into the output's staging
// area; the task that completes the date makes its commit ready.
func (s *Step) Reduce(ctx context.Context, d civil.Date, bucket, buckets int) (Next, error) {
	var doc reduceDoc
	if err := storage.ReadJSON(ctx, s.Scratch, s.reduceKey(d, bucket), &doc); err != nil {
		return Next{}, err
	}
	f, err := os.CreateTemp(s.ReduceOptions.TempDir, "sluice-reduce-*")
	if err != nil {
		return Next{}, fmt.Errorf("reduce %s: create temp file: %w", d, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	var st transform.BucketStats
	if cv := doc.Convert; cv != nil {
		st, err = transform.ConvertFile(ctx, s.Out, cv.Key, cv.Size, s.Spec, doc.Input.Columns, bw, s.ReduceOptions)
		st.Date, st.Bucket = d, bucket
	} else {
		st, err = transform.ReduceBucket(ctx, s.Scratch, s.Spec, doc.Input, bw, s.ReduceOptions)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return Next{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Next{}, fmt.Errorf("reduce %s: %w", d, err)
	}
	staged := s.stagedKey(d, bucket)
	if err := s.Out.Put(ctx, staged, f); err != nil {
		return Next{}, fmt.Errorf("reduce %s: put %s: %w", d, staged, err)
	}
	if err := storage.WriteJSON(ctx, s.Scratch, s.reduceDoneKey(d, bucket), reduceDone{Stats: st, Staged: staged}); err != nil {
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
