package job

import (
	"context"
	"fmt"
	"strconv"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/civil"
	"sluice/pipeline/format"
	"sluice/pipeline/reduce"
	"sluice/pipeline/storage"
)

// fragmentDone is an encoded fragment, waiting in staging for its
// partition's commit.
type fragmentDone struct {
	Stats  reduce.FragmentStats `json:"stats"`
	Staged string               `json:"staged"`
}

// Encode encodes fragment f of date d: one column group of one row group,
// merged from the sorted runs of the row group's slices, or one file of a
// schema conversion. The task that completes the date makes its commit
// ready.
func (s *Step) Encode(ctx context.Context, d civil.Date, f, fragments int) (Next, error) {
	if done, err := s.committed(ctx, d); err != nil || done {
		if done {
			s.log().Info("encode: the date is already committed", "date", d.String(), "fragment", f)
		}
		return Next{}, err
	}
	var sp split
	if err := storage.ReadJSON(ctx, s.Scratch, s.splitKey(), &sp); err != nil {
		return Next{}, err
	}
	ds, ok := sp.date(d)
	if !ok || f < 0 || f >= ds.fragments() {
		return Next{}, fmt.Errorf("encode %s: no fragment %d", d, f)
	}
	file, err := newTempFile(s.ReduceOptions.TempDir)
	if err != nil {
		return Next{}, fmt.Errorf("encode %s: %w", d, err)
	}
	defer file.remove()
	done := fragmentDone{Staged: s.fragmentKey(d, f)}
	if ds.Convert {
		cv := ds.ConvertFiles[f]
		done.Stats, err = reduce.ConvertFile(ctx, s.Out, cv.Key, cv.Size, s.Spec, ds.Columns, file.w, s.ReduceOptions)
	} else {
		var in reduce.FragmentInput
		if in, err = s.fragmentInput(ctx, ds, f); err == nil {
			done.Stats, err = reduce.EncodeFragment(ctx, s.Scratch, s.Spec, in, file.w)
		}
	}
	if err != nil {
		return Next{}, err
	}
	if err := file.put(ctx, s.Out, done.Staged); err != nil {
		return Next{}, fmt.Errorf("encode %s: %w", d, err)
	}
	if err := storage.WriteJSON(ctx, s.Scratch, s.fragmentDoneKey(d, f), done); err != nil {
		return Next{}, err
	}
	next := Next{Encoded: &done.Stats}
	all, err := s.Barrier.Arrive(ctx, "encode", d.String()+"/"+strconv.Itoa(f), sp.Encodes)
	if err != nil {
		return next, err
	}
	s.progress(ctx, "encode %d/%d fragments", all.Arrived, sp.Encodes)
	arr, err := s.Barrier.Arrive(ctx, "encode/"+d.String(), strconv.Itoa(f), fragments)
	if err != nil {
		return next, err
	}
	if arr.Complete {
		next.Commits, next.CommitTotal = []civil.Date{d}, sp.commits()
	}
	return next, nil
}

// fragmentInput is the input of fragment f of a rebuilt date: column
// group f mod K of row group f div K, from the runs of the row group's
// slices.
func (s *Step) fragmentInput(ctx context.Context, ds dateSplit, f int) (in reduce.FragmentInput, err error) {
	k := len(ds.Groups)
	rg, g := f/k, f%k
	ff, err := s.Spec.FileFormat()
	if err != nil {
		return in, err
	}
	in = reduce.FragmentInput{Date: ds.Date, Fragment: format.Fragment{Columns: ds.Columns, From: ds.Groups[g], To: len(ds.Columns)}}
	if g+1 < k {
		in.To = ds.Groups[g+1]
	}
	// A CSV file starts with its header: its first row group's fragment.
	in.Header = !ff.SplitsColumns() && (rg == 0 || ds.RowGroups[rg-1].File != ds.RowGroups[rg].File)
	r := ds.RowGroups[rg].Slices
	dones := make([]sliceDone, r[1]-r[0])
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(16)
	for i := range dones {
		eg.Go(func() error { return storage.ReadJSON(ectx, s.Scratch, s.sliceDoneKey(ds.Date, r[0]+i), &dones[i]) })
	}
	if err := eg.Wait(); err != nil {
		return in, err
	}
	in.Values, in.StringBytes = make([]int64, in.To-in.From), make([]int64, in.To-in.From)
	for _, d := range dones {
		if len(d.Runs) != k || len(d.Stats.Values) != len(ds.Columns) || len(d.Stats.StringBytes) != len(ds.Columns) {
			return in, fmt.Errorf("encode %s: slice %d has %d runs and %d column counts, want %d and %d", ds.Date, d.Stats.Slice, len(d.Runs), len(d.Stats.Values), k, len(ds.Columns))
		}
		in.Codec = d.Codec
		in.Runs = append(in.Runs, d.Runs[g])
		in.Rows += d.Stats.Rows
		for j := range in.Values {
			in.Values[j] += d.Stats.Values[in.From+j]
			in.StringBytes[j] += d.Stats.StringBytes[in.From+j]
		}
	}
	return in, nil
}
