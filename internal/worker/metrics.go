package worker

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"sluice/pipeline/job"
)

// Metrics are the worker's Prometheus series. Queue depths come from the
// scheduler's asynq collector; these cover the work itself.
type Metrics struct {
	TasksProcessed *prometheus.CounterVec   // by type and outcome
	TaskSeconds    *prometheus.HistogramVec // by type
	InputBytes     prometheus.Counter       // uncompressed bytes read by map tasks
	InputLines     prometheus.Counter
	RowsWritten    prometheus.Counter
	Quarantined    *prometheus.CounterVec // by reason
	Duplicates     prometheus.Counter
}

// NewMetrics creates the series and registers them with reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		TasksProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_worker_tasks_total", Help: "Tasks processed, by type and outcome (ok, error)."}, []string{"type", "outcome"}),
		TaskSeconds:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_worker_task_seconds", Help: "Task run time, by type.", Buckets: prometheus.ExponentialBuckets(0.01, 3, 12)}, []string{"type"}),
		InputBytes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_transform_input_bytes_total", Help: "Uncompressed input bytes read by map tasks."}),
		InputLines:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_transform_input_lines_total", Help: "Input lines read by map tasks."}),
		RowsWritten:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_transform_rows_written_total", Help: "Rows written to output partitions."}),
		Quarantined:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_transform_quarantined_total", Help: "Input lines sent to quarantine, by reason."}, []string{"reason"}),
		Duplicates:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_transform_duplicates_total", Help: "Duplicate copies of events collapsed by reduce tasks."}),
	}
	if reg != nil {
		reg.MustRegister(m.TasksProcessed, m.TaskSeconds, m.InputBytes, m.InputLines, m.RowsWritten, m.Quarantined, m.Duplicates)
	}
	return m
}

func (w *Worker) observe(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		start := time.Now()
		id, _ := asynq.GetTaskID(ctx)
		w.log.Info("task started", "type", t.Type(), "id", id)
		err := next.ProcessTask(ctx, t)
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		w.metrics.TasksProcessed.WithLabelValues(t.Type(), outcome).Inc()
		w.metrics.TaskSeconds.WithLabelValues(t.Type()).Observe(time.Since(start).Seconds())
		w.log.Info("task done", "type", t.Type(), "id", id, "outcome", outcome, "seconds", time.Since(start).Seconds())
		return err
	})
}

// observe counts what a job phase did.
func (m *Metrics) observe(next job.Next) {
	if s := next.Mapped; s != nil {
		m.InputBytes.Add(float64(s.BytesUncompressed))
		m.InputLines.Add(float64(s.LinesRead))
		for reason, n := range s.Quarantined {
			m.Quarantined.WithLabelValues(reason).Add(float64(n))
		}
	}
	if s := next.Reduced; s != nil {
		m.RowsWritten.Add(float64(s.Rows))
		m.Duplicates.Add(float64(s.Duplicates))
	}
}
