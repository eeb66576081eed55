package scheduler

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sluice/internal/orchestrator"
)

// orphanCollector exports how many active tasks have lost their worker
// (an expired lease), read from Redis at scrape time. A run whose task's
// worker died stalls until asynq's recoverer requeues the task; this says
// so while it happens, and an alert says when it lasts.
type orphanCollector struct {
	orch     *orchestrator.Orchestrator
	orphaned *prometheus.Desc
}

func newOrphanCollector(orch *orchestrator.Orchestrator) *orphanCollector {
	return &orphanCollector{orch: orch, orphaned: prometheus.NewDesc("sluice_orphaned_tasks",
		"Active tasks whose worker stopped renewing their lease (it died or lost Redis), by queue; asynq's recoverer requeues them 30 to 90 s after the lease lapsed.",
		[]string{"queue"}, nil)}
}

func (c *orphanCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.orphaned }

func (c *orphanCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, _, err := c.orch.OrphanedTasks(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.orphaned, err)
		return
	}
	for queue, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.orphaned, prometheus.GaugeValue, float64(n), queue)
	}
}
