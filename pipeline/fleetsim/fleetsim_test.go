package fleetsim_test

import (
	"math"
	"testing"
	"time"

	"sluice/pipeline/fleetsim"
)

// A step small enough to schedule by hand: plan 1 s, four maps of 2 s,
// bucket 1 s, one date of two row groups of two 1 s slices each and three
// 1 s column groups, commit 1 s.
func handGraph(t *testing.T) (fleetsim.Graph, []float64) {
	t.Helper()
	g := fleetsim.NewGraph(4, []fleetsim.DateLayout{{Date: "2026-10-31", Slices: []int{2, 2}, ColumnGroups: 3}})
	m := map[fleetsim.TaskID]float64{}
	for _, task := range g.Tasks {
		m[task] = 1
		if task.Phase == fleetsim.Map {
			m[task] = 2
		}
	}
	costs, err := g.Costs(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	return g, costs
}

func TestSimulateByHand(t *testing.T) {
	g, costs := handGraph(t)
	if n := len(g.Tasks); n != 1+4+1+4+6+1 {
		t.Fatalf("%d tasks", n)
	}
	// One worker runs everything in turn; two overlap the phases as the
	// comment in the table says; a hundred are limited by the critical
	// path: plan, a map, split, a slice, a column group, commit.
	for _, c := range []struct {
		workers int
		want    float64
	}{
		{1, 21},
		{2, 12}, // maps end at 5, bucket 6, slices 0-1 at 6-7 and 2-3 at 7-8, six encodes 8-11, commit 12
		{100, 7},
	} {
		if got := g.Simulate(costs, c.workers); got != c.want {
			t.Errorf("%d workers: %v s, want %v", c.workers, got, c.want)
		}
	}
	work, longest := fleetsim.Work(costs)
	if work != 21 || longest != 2 {
		t.Errorf("work %v longest %v", work, longest)
	}
}

// Encode tasks of a row group wait for that row group's slices only, and a
// conversion's encodes for the split task only.
func TestGraphBarriers(t *testing.T) {
	g := fleetsim.NewGraph(1, []fleetsim.DateLayout{
		{Date: "a", Slices: []int{1, 3}, ColumnGroups: 2},
		{Date: "b", Converted: 2},
		{Date: "c"}, // no rows
	})
	after := map[string][]string{}
	for i, task := range g.Tasks {
		for _, a := range g.After[i] {
			after[task.String()] = append(after[task.String()], g.Tasks[a].String())
		}
	}
	for task, want := range map[string][]string{
		"encode a 0": {"reduce a 0"},
		"encode a 3": {"reduce a 1", "reduce a 2", "reduce a 3"},
		"encode b 1": {"split"},
		"commit a":   {"encode a 0", "encode a 1", "encode a 2", "encode a 3"},
		"commit c":   {"split"},
	} {
		got := after[task]
		if len(got) != len(want) {
			t.Errorf("%s waits for %v, want %v", task, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s waits for %v, want %v", task, got, want)
			}
		}
	}
}

// The dispatch cost calibrated from a run's wall time makes the
// simulation last that long, and a missing measurement is an error.
func TestCalibrate(t *testing.T) {
	g, _ := handGraph(t)
	m := map[fleetsim.TaskID]float64{}
	for _, task := range g.Tasks {
		m[task] = 1
	}
	wall := float64(len(g.Tasks)) * 1.25 // a quarter second unaccounted for per task
	d, err := g.Calibrate(m, 1, wall)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(d.Seconds()-0.25) > 1e-6 {
		t.Errorf("dispatch %v, want 250ms", d)
	}
	costs, _ := g.Costs(m, d)
	if got := g.Simulate(costs, 1); math.Abs(got-wall) > 1e-6 {
		t.Errorf("calibrated simulation %v s, want %v", got, wall)
	}
	delete(m, fleetsim.TaskID{Phase: fleetsim.Split})
	if _, err := g.Costs(m, time.Millisecond); err == nil {
		t.Error("a graph with an unmeasured task got costs")
	}
}
