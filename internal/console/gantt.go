package console

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"sluice/internal/api"
)

// Gantt is a run's timeline laid out for SVG on the server, like the step
// graph: a row per step and phase (from its first task's start to its last
// task's end: where the time went), then a lane per worker with every task
// attempt it ran (a worker that runs several tasks at once gets a lane
// per slot it used: the gaps are where it idled). Times are offsets from
// the run's start.
type Gantt struct {
	Width, Height int
	Left          int // where the time axis starts (labels are left of it)
	Ticks         []Tick
	Rows          []GanttRow
	Bars          []Bar
	// Shown and Total count the attempts drawn and those the run has
	// (the chart draws at most maxBars).
	Shown, Total int
	Span         string // the run's span, for the caption
}

// Tick is a mark on the time axis.
type Tick struct {
	X     int
	Label string
}

// GanttRow is a labelled row.
type GanttRow struct {
	Y      int
	Label  string
	Note   string
	Worker bool // a worker's lane (phases otherwise)
	First  bool // the first lane of its worker, or the first phase row
}

// Bar is one task attempt (or a phase's span).
type Bar struct {
	X, Y, W, H int
	Class      string
	Title      string
	TaskID     string // empty for a phase's span
}

const (
	ganttLeft   = 330
	ganttRight  = 16
	ganttWidth  = 1260
	laneH       = 16
	laneGap     = 3
	sectionGap  = 14
	axisH       = 22
	maxBars     = 2000
	minBarWidth = 2
)

// phaseOrder orders a step's phases as they run.
var phaseOrder = []string{"crawl", "plan", "map", "split", "bucket", "reduce", "encode", "commit"} // bucket: the split task of runs before the rename

type attempt struct {
	task       api.TimelineTask
	a          api.TaskAttempt
	start, end time.Time
}

func layoutGantt(tl api.Timeline, now time.Time) Gantt {
	g := Gantt{Width: ganttWidth, Left: ganttLeft}
	t0 := tl.StartedAt
	t1 := now
	if tl.EndedAt != nil {
		t1 = *tl.EndedAt
	}
	var atts []attempt
	for _, t := range tl.Tasks {
		for _, a := range t.History {
			end := now
			if a.EndedAt != nil {
				end = *a.EndedAt
			}
			if a.Outcome == "lost" {
				end = a.StartedAt.Add(time.Duration(a.Seconds * float64(time.Second)))
			}
			atts = append(atts, attempt{task: t, a: a, start: a.StartedAt, end: end})
			if end.After(t1) {
				t1 = end
			}
		}
	}
	g.Total = len(atts)
	slices.SortFunc(atts, func(x, y attempt) int { return x.start.Compare(y.start) })
	if len(atts) > maxBars {
		atts = atts[:maxBars]
	}
	g.Shown = len(atts)
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Second
	}
	g.Span = fmtSeconds(span.Seconds())
	plot := ganttWidth - ganttLeft - ganttRight
	x := func(t time.Time) int {
		f := float64(t.Sub(t0)) / float64(span)
		return ganttLeft + int(max(0, min(1, f))*float64(plot))
	}
	bar := func(start, end time.Time) (int, int) {
		x1, x2 := x(start), x(end)
		return x1, max(x2-x1, minBarWidth)
	}
	y := axisH
	// Phases: a row per step and phase with tasks.
	type phaseKey struct{ step, phase string }
	type phaseSpan struct {
		first, last time.Time
		tasks       int
		busy        float64
	}
	spans := map[phaseKey]*phaseSpan{}
	var keys []phaseKey
	for _, t := range tl.Tasks {
		k := phaseKey{t.Step, t.Phase}
		ps := spans[k]
		if ps == nil {
			ps = &phaseSpan{first: t.StartedAt}
			spans[k] = ps
			keys = append(keys, k)
		}
		ps.tasks++
		for _, a := range t.History {
			ps.busy += a.Seconds
		}
		end := now
		if t.EndedAt != nil {
			end = *t.EndedAt
		}
		ps.first = minTime(ps.first, t.StartedAt)
		if end.After(ps.last) {
			ps.last = end
		}
	}
	slices.SortFunc(keys, func(a, b phaseKey) int {
		if c := spans[a].first.Compare(spans[b].first); c != 0 {
			return c
		}
		return slices.Index(phaseOrder, a.phase) - slices.Index(phaseOrder, b.phase)
	})
	for i, k := range keys {
		ps := spans[k]
		label := k.step
		if k.phase != "crawl" {
			label += " · " + k.phase
		}
		g.Rows = append(g.Rows, GanttRow{Y: y, Label: label, Note: fmt.Sprintf("%d × %s busy", ps.tasks, fmtSeconds(ps.busy)), First: i == 0})
		bx, bw := bar(ps.first, ps.last)
		g.Bars = append(g.Bars, Bar{X: bx, Y: y + 2, W: bw, H: laneH - 4, Class: "span phase-" + k.phase,
			Title: fmt.Sprintf("%s: %d tasks from +%s to +%s (%s), %s of task time", label, ps.tasks, fmtSeconds(ps.first.Sub(t0).Seconds()), fmtSeconds(ps.last.Sub(t0).Seconds()), fmtSeconds(ps.last.Sub(ps.first).Seconds()), fmtSeconds(ps.busy))})
		y += laneH + laneGap
	}
	y += sectionGap
	// Workers: lanes packed greedily, a new lane when every lane is busy.
	byWorker := map[string][]attempt{}
	for _, a := range atts {
		byWorker[a.a.Worker] = append(byWorker[a.a.Worker], a)
	}
	workers := slices.Sorted(func(yield func(string) bool) {
		for w := range byWorker {
			if !yield(w) {
				return
			}
		}
	})
	for _, w := range workers {
		var laneEnds []time.Time
		type placed struct {
			attempt
			lane int
		}
		var ps []placed
		busy := 0.0
		for _, a := range byWorker[w] {
			lane := slices.IndexFunc(laneEnds, func(e time.Time) bool { return !e.After(a.start) })
			if lane < 0 {
				lane = len(laneEnds)
				laneEnds = append(laneEnds, a.end)
			} else {
				laneEnds[lane] = a.end
			}
			ps = append(ps, placed{a, lane})
			busy += a.end.Sub(a.start).Seconds()
		}
		idle := 100 - 100*busy/(span.Seconds()*float64(len(laneEnds)))
		for l := range laneEnds {
			row := GanttRow{Y: y + l*(laneH+laneGap), Worker: true, First: l == 0}
			if l == 0 {
				row.Label = w
				row.Note = fmt.Sprintf("%d slot(s) used, idle %.0f%%", len(laneEnds), max(idle, 0))
			}
			g.Rows = append(g.Rows, row)
		}
		for _, p := range ps {
			bx, bw := bar(p.start, p.end)
			cls := "task phase-" + p.task.Phase + " outcome-" + strings.ReplaceAll(strings.ReplaceAll(p.a.Outcome, ",", ""), " ", "-")
			title := fmt.Sprintf("%s (attempt %d) on %s: +%s to +%s, %s, %s", p.task.Label, p.a.Attempt, w,
				fmtSeconds(p.start.Sub(t0).Seconds()), fmtSeconds(p.end.Sub(t0).Seconds()), fmtSeconds(p.a.Seconds), p.a.Outcome)
			g.Bars = append(g.Bars, Bar{X: bx, Y: y + p.lane*(laneH+laneGap) + 1, W: bw, H: laneH - 2, Class: cls, Title: title, TaskID: p.task.ID})
		}
		y += len(laneEnds)*(laneH+laneGap) + sectionGap/2
	}
	g.Height = y + 4
	g.Ticks = ticks(span, plot)
	return g
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ticks marks the axis about every 110 px, at a round step.
func ticks(span time.Duration, plot int) []Tick {
	steps := []time.Duration{100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour}
	want := span / time.Duration(max(plot/110, 1))
	step := steps[len(steps)-1]
	for _, s := range steps {
		if s >= want {
			step = s
			break
		}
	}
	var out []Tick
	for t := time.Duration(0); t <= span; t += step {
		out = append(out, Tick{X: ganttLeft + int(float64(t)/float64(span)*float64(plot)), Label: "+" + fmtSeconds(t.Seconds())})
	}
	return out
}
