// Package jobtest runs a job step's phases in one process, for tests of code
// that configures or feeds a job (as river's rivertest does for workers):
// an in-memory Barrier with the Redis barrier's contract, and Run, which
// plays every task of the step in the order the phases make them ready.
package jobtest

import (
	"context"
	"errors"
	"sync"

	"sluice/pipeline/job"
)

// Barrier is an in-memory job.Barrier: each phase a set of members, the
// first arrival that completes it told so.
type Barrier struct {
	mu       sync.Mutex
	members  map[string]map[string]bool
	complete map[string]bool
}

// NewBarrier returns an empty barrier.
func NewBarrier() *Barrier {
	return &Barrier{members: map[string]map[string]bool{}, complete: map[string]bool{}}
}

// Arrive records member's arrival in phase.
func (b *Barrier) Arrive(_ context.Context, phase, member string, total int) (job.Arrival, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.members[phase] == nil {
		b.members[phase] = map[string]bool{}
	}
	b.members[phase][member] = true
	a := job.Arrival{Arrived: len(b.members[phase])}
	if a.Arrived >= total {
		a.Complete = true
		a.First = !b.complete[phase]
		b.complete[phase] = true
	}
	return a, nil
}

// Run runs every phase of s, one task at a time in the order the phases make
// them ready, and returns the step's summary. s.Barrier is set to a new
// Barrier when nil.
func Run(ctx context.Context, s *job.Step) (*job.Summary, error) {
	return RunEach(ctx, s, nil)
}

// RunEach is Run, calling each (when not nil) with what every task made
// ready.
func RunEach(ctx context.Context, s *job.Step, each func(job.Next)) (*job.Summary, error) {
	if s.Barrier == nil {
		s.Barrier = NewBarrier()
	}
	queue := []func() (job.Next, error){func() (job.Next, error) { return s.Plan(ctx) }}
	for len(queue) > 0 {
		next, err := queue[0]()
		queue = queue[1:]
		if err != nil {
			return nil, err
		}
		if each != nil {
			each(next)
		}
		if next.Done != nil {
			return next.Done, nil
		}
		for i := range next.Maps {
			queue = append(queue, func() (job.Next, error) { return s.Map(ctx, i, next.Maps) })
		}
		if next.Split {
			queue = append(queue, func() (job.Next, error) { return s.Split(ctx, next.Shards) })
		}
		for _, r := range next.Reduces {
			queue = append(queue, func() (job.Next, error) { return s.Reduce(ctx, r.Date, r.Slice) })
		}
		for _, e := range next.Encodes {
			queue = append(queue, func() (job.Next, error) { return s.Encode(ctx, e.Date, e.Fragment, e.Fragments) })
		}
		for _, d := range next.Commits {
			queue = append(queue, func() (job.Next, error) { return s.Commit(ctx, d, next.CommitTotal) })
		}
	}
	return nil, errors.New("jobtest: the step did not end")
}
