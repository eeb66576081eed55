package console

import (
	"fmt"
	"html/template"
	"strings"

	"sluice/internal/api"
)

// Graph is a workflow's step graph laid out for SVG: steps in layers from
// the top (a step sits one layer below the lowest step it waits on), edges
// from each step to those that wait on it. Workflows have a handful of
// steps, so a longest-path layering with steps side by side in each layer
// reads as Glue's and Dagster's graphs do, without a layout engine.
type Graph struct {
	Width, Height int
	Nodes         []Node
	Edges         []Edge
}

// Node is one step in the graph.
type Node struct {
	X, Y, W, H int
	Name       string
	Kind       string
	State      string
	Note       string // duration or progress
	Href       string
}

// Edge is an arrow between two steps.
type Edge struct{ Path template.HTMLAttr }

const (
	nodeW, nodeH = 230, 46
	triggerH     = 30
	gapX, gapY   = 24, 22
	margin       = 12
)

// layout lays out the steps of a run (or of a workflow, states empty).
func layout(steps []api.Step) Graph {
	layer := map[string]int{}
	var depth func(name string, seen map[string]bool) int
	byName := map[string]api.Step{}
	for _, s := range steps {
		byName[s.Name] = s
	}
	depth = func(name string, seen map[string]bool) int {
		if l, ok := layer[name]; ok {
			return l
		}
		if seen[name] {
			return 0 // a cycle; workflows are validated, so this is defensive
		}
		seen[name] = true
		l := 0
		for _, a := range byName[name].After {
			l = max(l, depth(a, seen)+1)
		}
		layer[name] = l
		return l
	}
	layers := [][]string{}
	for _, s := range steps {
		l := depth(s.Name, map[string]bool{})
		for len(layers) <= l {
			layers = append(layers, nil)
		}
		layers[l] = append(layers[l], s.Name)
	}
	g := Graph{}
	pos := map[string]*Node{}
	y := margin
	widest := 0
	for _, names := range layers {
		widest = max(widest, len(names))
	}
	g.Width = 2*margin + widest*nodeW + (widest-1)*gapX
	for _, names := range layers {
		h := triggerH
		for _, n := range names {
			if byName[n].Kind != "trigger" {
				h = nodeH
			}
		}
		rowW := len(names)*nodeW + (len(names)-1)*gapX
		x := (g.Width - rowW) / 2
		for _, n := range names {
			s := byName[n]
			nh := nodeH
			if s.Kind == "trigger" {
				nh = triggerH
			}
			g.Nodes = append(g.Nodes, Node{X: x, Y: y + (h-nh)/2, W: nodeW, H: nh, Name: n, Kind: s.Kind, State: stateOrDash(s.State), Note: stepNote(s), Href: "#step-" + n})
			x += nodeW + gapX
		}
		y += h + gapY
	}
	for i := range g.Nodes {
		pos[g.Nodes[i].Name] = &g.Nodes[i]
	}
	for _, s := range steps {
		to := pos[s.Name]
		for _, a := range s.After {
			from := pos[a]
			if from == nil || to == nil {
				continue
			}
			x1, y1 := from.X+from.W/2, from.Y+from.H
			x2, y2 := to.X+to.W/2, to.Y
			mid := (y1 + y2) / 2
			g.Edges = append(g.Edges, Edge{Path: template.HTMLAttr(fmt.Sprintf(`d="M%d %d C%d %d, %d %d, %d %d"`, x1, y1, x1, mid, x2, mid, x2, y2-2))})
		}
	}
	g.Height = y - gapY + margin
	return g
}

func stateOrDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// stepNote is the short line under a step's name: progress while running,
// else how long it took.
func stepNote(s api.Step) string {
	if s.Progress != nil && s.State == "RUNNING" {
		return s.Progress.Text
	}
	if s.Kind == "trigger" || s.DurationSeconds == nil {
		return ""
	}
	return fmtSeconds(*s.DurationSeconds)
}

func fmtSeconds(sec float64) string {
	switch {
	case sec < 1:
		return fmt.Sprintf("%.0f ms", sec*1000)
	case sec < 60:
		return fmt.Sprintf("%.1f s", sec)
	case sec < 3600:
		return fmt.Sprintf("%dm %02ds", int(sec)/60, int(sec)%60)
	}
	return fmt.Sprintf("%dh %02dm", int(sec)/3600, int(sec)%3600/60)
}

// stateClass is the CSS class of a state.
func stateClass(state string) string {
	return "st-" + strings.ToLower(strings.ReplaceAll(state, "_", "-"))
}
