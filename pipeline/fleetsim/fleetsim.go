// Package fleetsim predicts how long a job step takes on a fleet of any
// size, by replaying the task graph of a real run on simulated workers.
//
// A run's job step is a graph of phases with barriers between them: the
// plan, then every map task, then the split task, then per row group its
// reduce tasks (slices), then that row group's encode tasks (fragments),
// then per date the commit, the last of which ends the step. The graph
// comes from the step's layout (job.Summary.Layout) and the number of map
// tasks; each task's cost is what it measured in the run (the workers'
// "task done" log), plus a fixed dispatch cost per task (taking a task
// off the queue and acknowledging it), which the caller calibrates from a
// run whose wall time it knows.
//
// The simulation is list scheduling: N workers of one slot each; a task
// becomes ready when the last task it waits for ends, and a free worker
// takes the task that became ready first, as asynq's FIFO queue gives it.
// It assumes what scaling out assumes: a task takes as long on any worker
// as it did in the measured run, and the storage, Redis and network keep
// up with N workers.
package fleetsim

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Phase names the kinds of task of a job step.
type Phase string

const (
	Plan   Phase = "plan"
	Map    Phase = "map"
	Split  Phase = "split"
	Reduce Phase = "reduce"
	Encode Phase = "encode"
	Commit Phase = "commit"
)

// TaskID names one task of a step: its phase, its date (reduce, encode,
// commit) and its index (the shard, slice or fragment).
type TaskID struct {
	Phase Phase
	Date  string
	Index int
}

func (t TaskID) String() string {
	switch t.Phase {
	case Plan, Split:
		return string(t.Phase)
	case Commit:
		return "commit " + t.Date
	case Map:
		return fmt.Sprintf("map %d", t.Index)
	}
	return fmt.Sprintf("%s %s %d", t.Phase, t.Date, t.Index)
}

// DateLayout is how one date's work was cut (see job.DateLayout).
type DateLayout struct {
	Date string
	// Slices is the number of reduce tasks of each row group, in order;
	// ColumnGroups the encode tasks of each row group.
	Slices       []int
	ColumnGroups int
	// Converted, for a schema conversion, is its number of encode tasks
	// (one per file, waiting only on the split task).
	Converted int
}

// Graph is a job step's tasks and what each waits for.
type Graph struct {
	Tasks []TaskID
	// After[i] are the indexes of the tasks task i waits for.
	After [][]int
}

// NewGraph builds the task graph of a step with maps map tasks and
// dates' layouts.
func NewGraph(maps int, dates []DateLayout) Graph {
	var g Graph
	add := func(t TaskID, after []int) int {
		g.Tasks = append(g.Tasks, t)
		g.After = append(g.After, after)
		return len(g.Tasks) - 1
	}
	plan := add(TaskID{Phase: Plan}, nil)
	var mapIdx []int
	for i := range maps {
		mapIdx = append(mapIdx, add(TaskID{Phase: Map, Index: i}, []int{plan}))
	}
	if maps == 0 {
		mapIdx = []int{plan}
	}
	split := add(TaskID{Phase: Split}, mapIdx)
	for _, d := range dates {
		var encodes []int
		if d.Converted > 0 {
			for f := range d.Converted {
				encodes = append(encodes, add(TaskID{Phase: Encode, Date: d.Date, Index: f}, []int{split}))
			}
		}
		slice := 0
		for rg, n := range d.Slices {
			var reduces []int
			for range n {
				reduces = append(reduces, add(TaskID{Phase: Reduce, Date: d.Date, Index: slice}, []int{split}))
				slice++
			}
			for k := range d.ColumnGroups {
				encodes = append(encodes, add(TaskID{Phase: Encode, Date: d.Date, Index: rg*d.ColumnGroups + k}, reduces))
			}
		}
		if len(encodes) == 0 {
			encodes = []int{split} // a date with no rows commits at once
		}
		add(TaskID{Phase: Commit, Date: d.Date}, encodes)
	}
	return g
}

// ErrMissingTask reports a task of the graph that has no measured cost.
var ErrMissingTask = errors.New("task not measured")

// Costs gives each task of g its measured seconds, plus dispatch per task.
func (g Graph) Costs(measured map[TaskID]float64, dispatch time.Duration) ([]float64, error) {
	out := make([]float64, len(g.Tasks))
	var missing []string
	for i, t := range g.Tasks {
		s, ok := measured[t]
		if !ok {
			missing = append(missing, t.String())
			continue
		}
		out[i] = s + dispatch.Seconds()
	}
	if len(missing) > 0 {
		if len(missing) > 5 {
			missing = append(missing[:5], fmt.Sprintf("and %d more", len(missing)-5))
		}
		return nil, fmt.Errorf("%w: %v", ErrMissingTask, missing)
	}
	return out, nil
}

// Work is the sum of the costs and Longest the largest: Work/Longest is
// the most workers the step can keep busy at once.
func Work(costs []float64) (work, longest float64) {
	for _, c := range costs {
		work += c
		longest = max(longest, c)
	}
	return work, longest
}

// Simulate returns the step's predicted wall time on workers workers.
func (g Graph) Simulate(costs []float64, workers int) float64 {
	if workers < 1 || len(g.Tasks) == 0 {
		return 0
	}
	n := len(g.Tasks)
	waiting := make([]int, n)
	next := make([][]int, n)
	for i, after := range g.After {
		waiting[i] = len(after)
		for _, a := range after {
			next[a] = append(next[a], i)
		}
	}
	ready := &readyQueue{}
	for i := range n {
		if waiting[i] == 0 {
			heap.Push(ready, readyTask{at: 0, i: i})
		}
	}
	running := &endQueue{}
	free := workers
	now, end := 0.0, 0.0
	for ready.Len() > 0 || running.Len() > 0 {
		for free > 0 && ready.Len() > 0 {
			r := heap.Pop(ready).(readyTask)
			start := max(now, r.at)
			heap.Push(running, readyTask{at: start + costs[r.i], i: r.i})
			free--
		}
		done := heap.Pop(running).(readyTask)
		now, end = done.at, max(end, done.at)
		free++
		for _, j := range next[done.i] {
			if waiting[j]--; waiting[j] == 0 {
				heap.Push(ready, readyTask{at: now, i: j})
			}
		}
	}
	return end
}

// Calibrate finds the dispatch cost per task that makes the simulation of
// g on workers workers last wall seconds, the run's measured time: the
// time the measured task seconds do not account for (picking tasks off
// the queue, acknowledging them), spread over the tasks.
func (g Graph) Calibrate(measured map[TaskID]float64, workers int, wall float64) (time.Duration, error) {
	costs, err := g.Costs(measured, 0)
	if err != nil {
		return 0, err
	}
	lo, hi := 0.0, wall
	if g.Simulate(costs, workers) >= wall {
		return 0, nil
	}
	for range 50 {
		mid := (lo + hi) / 2
		c := slices.Clone(costs)
		for i := range c {
			c[i] += mid
		}
		if g.Simulate(c, workers) < wall {
			lo = mid
		} else {
			hi = mid
		}
	}
	return time.Duration(lo * float64(time.Second)), nil
}

type readyTask struct {
	at float64
	i  int
}

// readyQueue orders ready tasks by when they became ready, then by
// their place in the graph (the order their phase enqueues them).
type readyQueue []readyTask

func (q readyQueue) Len() int { return len(q) }
func (q readyQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].i < q[j].i
}
func (q readyQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *readyQueue) Push(x any)   { *q = append(*q, x.(readyTask)) }
func (q *readyQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// endQueue orders running tasks by when they end.
type endQueue []readyTask

func (q endQueue) Len() int { return len(q) }
func (q endQueue) Less(i, j int) bool {
	return cmp.Or(cmp.Compare(q[i].at, q[j].at), cmp.Compare(q[i].i, q[j].i)) < 0
}
func (q endQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *endQueue) Push(x any)   { *q = append(*q, x.(readyTask)) }
func (q *endQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
