package console

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"sluice/internal/api"
)

// trend is a workflow's recent run durations, drawn as bars (oldest left),
// each a link to its run.
type trend struct {
	Workflow string
	Width    int
	Height   int
	Bars     []trendBar
	Max      string // the longest duration, the chart's top
	Median   string
}

type trendBar struct {
	X, Y, W, H int
	State      string
	Title      string
	Href       string
}

const (
	trendRuns   = 40
	trendHeight = 64
	trendBarW   = 10
)

// trends are the duration trends of the workflows (or one): their last
// trendRuns ended runs.
func (c *Console) trends(ctx context.Context, only string) ([]trend, error) {
	var out []trend
	for _, name := range c.svc.Orch.Workflows() {
		if only != "" && name != only {
			continue
		}
		var ended []api.Run
		cursor := ""
		for len(ended) < trendRuns {
			p, err := c.svc.History(ctx, api.Filter{Workflow: name}, cursor, 100)
			if err != nil {
				return nil, err
			}
			for _, r := range p.Runs {
				if r.EndedAt != nil && len(ended) < trendRuns {
					ended = append(ended, r)
				}
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if len(ended) == 0 {
			continue
		}
		out = append(out, layoutTrend(name, ended))
	}
	return out, nil
}

// layoutTrend draws runs (newest first) as bars from the left, oldest
// first, heights relative to the longest.
func layoutTrend(name string, runs []api.Run) trend {
	t := trend{Workflow: name, Height: trendHeight, Width: len(runs)*(trendBarW+2) + 2}
	longest, ds := 0.0, make([]float64, 0, len(runs))
	for _, r := range runs {
		longest = max(longest, r.DurationSeconds)
		ds = append(ds, r.DurationSeconds)
	}
	for i := range runs {
		r := runs[len(runs)-1-i]
		h := max(int(r.DurationSeconds/max(longest, 0.001)*float64(trendHeight-4)), 2)
		t.Bars = append(t.Bars, trendBar{X: 1 + i*(trendBarW+2), Y: trendHeight - h, W: trendBarW, H: h, State: r.State,
			Title: fmt.Sprintf("%s %s..%s %s in %s (%s)", shortID(r.ID), r.Window.Start, r.Window.End, r.State, fmtSeconds(r.DurationSeconds), r.CreatedAt.Format("2006-01-02 15:04Z")),
			Href:  "/console/runs/" + r.ID})
	}
	t.Max = fmtSeconds(longest)
	t.Median = fmtSeconds(median(ds))
	return t
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// shortID is a run id without its workflow name: the window, time and
// suffix tell runs of one workflow apart.
func shortID(id string) string {
	if _, rest, ok := strings.Cut(id, "."); ok {
		return rest
	}
	return id
}
