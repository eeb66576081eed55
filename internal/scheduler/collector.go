package scheduler

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sluice/internal/orchestrator"
	"sluice/pipeline/workflow"
)

// runCollector exports, per workflow, what an alert on a daily job needs:
// when a run last succeeded, the state and duration of the latest run, and
// how many recent runs are in each state. It reads the run store at scrape
// time, so every scheduler replica reports the same values.
type runCollector struct {
	orch        *orchestrator.Orchestrator
	lastSuccess *prometheus.Desc
	latest      *prometheus.Desc
	latestSecs  *prometheus.Desc
	recent      *prometheus.Desc
}

func newRunCollector(orch *orchestrator.Orchestrator) *runCollector {
	return &runCollector{
		orch:        orch,
		lastSuccess: prometheus.NewDesc("sluice_workflow_last_success_timestamp_seconds", "End time of the newest SUCCEEDED run among the recent ones.", []string{"workflow"}, nil),
		latest:      prometheus.NewDesc("sluice_workflow_latest_run_state", "1 for the state of the newest run.", []string{"workflow", "state"}, nil),
		latestSecs:  prometheus.NewDesc("sluice_workflow_latest_run_seconds", "Duration of the newest run so far.", []string{"workflow"}, nil),
		recent:      prometheus.NewDesc("sluice_workflow_recent_runs", "Runs among the newest 100, by state.", []string{"workflow", "state"}, nil),
	}
}

func (c *runCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lastSuccess
	ch <- c.latest
	ch <- c.latestSecs
	ch <- c.recent
}

func (c *runCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range c.orch.Workflows() {
		runs, err := c.orch.Runs(ctx, name, 100)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.recent, err)
			continue
		}
		counts := map[workflow.StepState]int{workflow.Running: 0, workflow.Succeeded: 0, workflow.Failed: 0}
		var lastOK time.Time
		for _, r := range runs {
			counts[r.State]++
			if r.State == workflow.Succeeded && r.Ended.After(lastOK) {
				lastOK = r.Ended
			}
		}
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.recent, prometheus.GaugeValue, float64(n), name, string(state))
		}
		if !lastOK.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, float64(lastOK.Unix()), name)
		}
		if len(runs) > 0 {
			r := runs[0]
			ch <- prometheus.MustNewConstMetric(c.latest, prometheus.GaugeValue, 1, name, string(r.State))
			end := r.Ended
			if end.IsZero() {
				end = time.Now()
			}
			ch <- prometheus.MustNewConstMetric(c.latestSecs, prometheus.GaugeValue, end.Sub(r.Created).Seconds(), name)
		}
	}
}
