package deploy

import (
	"encoding/json"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"sluice/internal/scheduler"
	"sluice/internal/worker"
)

const (
	rulesFile     = "deploy/k8s/components/monitoring/prometheusrule.yaml"
	dashboardFile = "deploy/k8s/components/monitoring/sluice-dashboard.json"
)

// descRecorder is a prometheus.Registerer that keeps what every collector
// registered with it describes.
type descRecorder struct{ descs []*prometheus.Desc }

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return false }

var descString = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}\}$`)

// registered are the series the two processes serve, name → label names,
// as their code registers them (worker.NewMetrics, scheduler.RegisterMetrics).
func registered(t *testing.T) map[string][]string {
	t.Helper()
	orch, opt := newOrchestrator(t)
	// asynq's queue collector describes what it collects: the queues that
	// exist in Redis.
	queuesOfTasks(t, opt)
	rec := &descRecorder{}
	worker.NewMetrics(rec, orch)
	scheduler.RegisterMetrics(rec, opt, orch)
	out := map[string][]string{}
	for _, d := range rec.descs {
		m := descString.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		var ls []string
		for _, l := range strings.Split(m[2], ",") {
			if name, _, ok := strings.Cut(l, "="); ok {
				ls = append(ls, name)
			}
		}
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				ls = append(ls, l)
			}
		}
		out[m[1]] = ls
	}
	if _, ok := out["sluice_step_seconds"]; !ok {
		t.Fatalf("the step series are not registered: %v", slices.Sorted(maps.Keys(out)))
	}
	return out
}

// series is what a PromQL expression can select: the registered metrics
// (histograms with their _bucket, _sum and _count) and recorded series.
type series map[string][]string

func (s series) labels(name string) ([]string, bool) {
	if ls, ok := s[name]; ok {
		return ls, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if ls, ok := s[base]; ok {
				if suffix == "_bucket" {
					ls = append(slices.Clone(ls), "le")
				}
				return ls, true
			}
		}
	}
	return nil, false
}

var promql = parser.NewParser(parser.Options{})

// checkExpr reports every metric an expression selects that nothing
// registers, every label it matches, groups or joins on that those metrics
// do not have, and returns the labels of its result when it is an
// aggregation (for recording rules).
func checkExpr(t *testing.T, where, expr string, known series) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return nil
	}
	selectorsIn := func(n parser.Node) []*parser.VectorSelector {
		var out []*parser.VectorSelector
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				out = append(out, vs)
			}
			return nil
		})
		return out
	}
	needLabels := func(n parser.Node, ls []string, why string) {
		for _, vs := range selectorsIn(n) {
			have, ok := known.labels(vs.Name)
			if !ok {
				continue // reported below
			}
			for _, l := range ls {
				if !slices.Contains(have, l) {
					t.Errorf("%s: %s %s, which %s does not have (it has %v)", where, why, l, vs.Name, have)
				}
			}
		}
	}
	for _, vs := range selectorsIn(e) {
		if _, ok := known.labels(vs.Name); !ok {
			t.Errorf("%s: no process registers %s", where, vs.Name)
			continue
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName {
				needLabels(vs, []string{m.Name}, "matches label")
			}
		}
	}
	var result []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.AggregateExpr:
			if !n.Without {
				needLabels(n.Expr, n.Grouping, "groups by")
				if result == nil {
					result = n.Grouping
				}
			}
		case *parser.BinaryExpr:
			if vm := n.VectorMatching; vm != nil && vm.On {
				needLabels(n.LHS, vm.MatchingLabels, "joins on")
				needLabels(n.RHS, vm.MatchingLabels, "joins on")
			}
		}
		return nil
	})
	return result
}

// The PrometheusRule's groups pass Prometheus's own rule checks (what
// `promtool check rules` runs: YAML, PromQL, templates, durations), and
// every series they read is one the code registers, with the labels used.
func TestAlertRulesCheckAndReadRegisteredSeries(t *testing.T) {
	t.Parallel()
	var pr struct {
		Kind string         `json:"kind"`
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal(readFile(t, rulesFile), &pr); err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.Marshal(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, promql, slog.Default())
	for _, err := range errs {
		t.Errorf("%s: %v", rulesFile, err)
	}
	if groups == nil {
		t.FailNow()
	}
	known := series(registered(t))
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			where := rulesFile + ": " + r.Alert + r.Record
			ls := checkExpr(t, where, r.Expr, known)
			if r.Record != "" {
				known[r.Record] = ls
			} else {
				alerts[r.Alert] = true
				if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: wants a severity label, a summary and a description", where)
				}
			}
		}
	}
	// What the fleet must page or warn on.
	for _, a := range []string{"SluiceRunFailed", "SluiceRunLate", "SluiceTasksArchived", "SluiceBacklogWithoutWorkers", "SluiceStepSlow"} {
		if !alerts[a] {
			t.Errorf("no alert %s", a)
		}
	}
}

var grafanaVar = regexp.MustCompile(`\$__(rate_interval|interval|range)`)

// Every panel of the dashboard queries series the code registers (or the
// rules record), with the labels it uses, in PromQL that parses.
func TestDashboardQueriesRegisteredSeries(t *testing.T) {
	t.Parallel()
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(readFile(t, dashboardFile), &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	known := series(registered(t))
	var rules struct {
		Spec struct {
			Groups []struct {
				Rules []struct{ Record, Expr string } `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(readFile(t, rulesFile), &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Spec.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = checkExpr(t, r.Record, r.Expr, known)
			}
		}
	}
	queries := 0
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			queries++
			checkExpr(t, "panel "+p.Title, grafanaVar.ReplaceAllString(target.Expr, "5m"), known)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((\w+), *(\w+)\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		m := labelValues.FindStringSubmatch(q["query"].(string))
		if m == nil {
			t.Errorf("variable %s: query %v is not label_values(metric, label)", v.Name, q["query"])
			continue
		}
		if ls, ok := known.labels(m[1]); !ok || !slices.Contains(ls, m[2]) {
			t.Errorf("variable %s: %s has no label %s", v.Name, m[1], m[2])
		}
	}
	// The views the dashboard promises.
	text := string(readFile(t, dashboardFile))
	for _, s := range []string{"sluice_workflow_latest_run_state", "sluice_step_seconds", "sluice_step_input_bytes_total", "asynq_tasks_enqueued_total", "sluice_fleet_workers", "sluice_step_quarantined_total"} {
		if !strings.Contains(text, s) {
			t.Errorf("the dashboard shows nothing of %s", s)
		}
	}
	t.Logf("%d panels, %d queries checked", len(dash.Panels), queries)
}

// docs/METRICS.md lists every Sluice and asynq metric the code registers,
// with the labels the code gives it, and nothing else: each row of its
// tables names a registered series.
func TestEveryMetricIsDocumented(t *testing.T) {
	t.Parallel()
	doc := string(readFile(t, "docs/METRICS.md"))
	reg := registered(t)
	rows := map[string]string{} // metric → its row's labels cell
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = cells[3]
	}
	for name, labels := range reg {
		if !strings.HasPrefix(name, "sluice_") && !strings.HasPrefix(name, "asynq_") {
			continue
		}
		cell, ok := rows[name]
		if !ok {
			t.Errorf("docs/METRICS.md has no row for %s", name)
			continue
		}
		for _, l := range labels {
			if !strings.Contains(cell, "`"+l+"`") {
				t.Errorf("docs/METRICS.md: %s's row does not name its label %s", name, l)
			}
		}
	}
	for name := range rows {
		if _, ok := reg[name]; !ok {
			t.Errorf("docs/METRICS.md describes %s, which nothing registers", name)
		}
	}
}
