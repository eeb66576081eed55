package worker

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"sluice/internal/orchestrator"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// Metrics are the worker's task series: every attempt of every task, by
// workflow, step and task type. What a step did as a whole (its duration
// and outcome, bytes, lines and rows) is recorded once at its end by the
// orchestrator (orchestrator.Metrics); queue depths come from the
// scheduler.
type Metrics struct {
	TasksProcessed *prometheus.CounterVec   // workflow, step, type, outcome
	TaskSeconds    *prometheus.HistogramVec // workflow, step, type
}

// NewMetrics creates the task series, with a zero series for every task
// type of every step of orch's workflows, and registers with reg (nil:
// nothing) all that a worker process serves at /metrics: the Go runtime and
// process collectors, the task series and orch's step series.
func NewMetrics(reg prometheus.Registerer, orch *orchestrator.Orchestrator) *Metrics {
	m := &Metrics{
		TasksProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_worker_tasks_total", Help: "Task attempts processed, by workflow, step, type and outcome (ok, error; a task handed back at shutdown counts as error)."}, []string{"workflow", "step", "type", "outcome"}),
		TaskSeconds:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_worker_task_seconds", Help: "Task attempt run time, by workflow, step and type.", Buckets: prometheus.ExponentialBuckets(0.01, 3, 12)}, []string{"workflow", "step", "type"}),
	}
	if orch != nil {
		m.init(orch)
	}
	if reg != nil {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m.TasksProcessed, m.TaskSeconds)
		if orch != nil {
			reg.MustRegister(orch.Metrics())
		}
	}
	return m
}

// taskTypes are the task types of each kind of step.
var taskTypes = map[workflow.StepKind][]string{
	workflow.KindCrawler: {tasks.TypeCrawlRun},
	workflow.KindJob:     {tasks.TypeTransformPlan, tasks.TypeTransformMap, tasks.TypeTransformBucket, tasks.TypeTransformReduce, tasks.TypeTransformEncode, tasks.TypeTransformCommit},
}

// init creates every series of the loaded workflows' steps at zero, so that
// a worker that lives for one run (scaled from zero) shows its increase.
func (m *Metrics) init(o *orchestrator.Orchestrator) {
	for _, name := range o.Workflows() {
		wf, _ := o.Workflow(name)
		for i := range wf.Steps {
			s := &wf.Steps[i]
			for _, typ := range taskTypes[s.Kind()] {
				m.TaskSeconds.WithLabelValues(name, s.Name, typ)
				for _, outcome := range []string{"ok", "error"} {
					m.TasksProcessed.WithLabelValues(name, s.Name, typ, outcome)
				}
			}
		}
	}
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
		ref, _ := tasks.Decode[tasks.StepRef](t) // labels stay empty for a payload that is not one
		w.metrics.TasksProcessed.WithLabelValues(ref.Workflow, ref.Step, t.Type(), outcome).Inc()
		w.metrics.TaskSeconds.WithLabelValues(ref.Workflow, ref.Step, t.Type()).Observe(time.Since(start).Seconds())
		w.log.Info("task done", "type", t.Type(), "id", id, "outcome", outcome, "seconds", time.Since(start).Seconds())
		return err
	})
}
