package scheduler

import (
	"context"
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/pipeline/workflow"
)

// runCollector exports, per workflow, what an alert on a daily job needs:
// when a run last succeeded, the state and duration of the latest run, and
// how many recent runs are in each state. It reads the run store at scrape
// time, so every scheduler replica reports the same values.
type runCollector struct {
	orch          *orchestrator.Orchestrator
	lastSuccess   *prometheus.Desc
	lastScheduled *prometheus.Desc
	newest        *prometheus.Desc
	latest        *prometheus.Desc
	latestSecs    *prometheus.Desc
	recent        *prometheus.Desc
	running       *prometheus.Desc
	now           func() time.Time
}

func newRunCollector(orch *orchestrator.Orchestrator, now func() time.Time) *runCollector {
	return &runCollector{
		orch:          orch,
		now:           now,
		running:       prometheus.NewDesc("sluice_step_running_seconds", "How long each RUNNING crawler or job step has been running (the longest, when several runs are active).", []string{"workflow", "step"}, nil),
		lastSuccess:   prometheus.NewDesc("sluice_workflow_last_success_timestamp_seconds", "End time of the newest SUCCEEDED run among the recent ones that published rows (any run, for a workflow without a job).", []string{"workflow"}, nil),
		lastScheduled: prometheus.NewDesc("sluice_workflow_last_scheduled_success_timestamp_seconds", "The same among the runs a schedule started (runs started by hand aside).", []string{"workflow"}, nil),
		newest:        prometheus.NewDesc("sluice_table_newest_partition_timestamp_seconds", "Start (00:00 UTC) of the newest date whose partition a run published rows in, per job step and its table.", []string{"workflow", "step", "table"}, nil),
		latest:        prometheus.NewDesc("sluice_workflow_latest_run_state", "1 for the state of the newest run.", []string{"workflow", "state"}, nil),
		latestSecs:    prometheus.NewDesc("sluice_workflow_latest_run_seconds", "Duration of the newest run so far.", []string{"workflow"}, nil),
		recent:        prometheus.NewDesc("sluice_workflow_recent_runs", "Runs among the newest 100, by state.", []string{"workflow", "state"}, nil),
	}
}

func (c *runCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lastSuccess
	ch <- c.lastScheduled
	ch <- c.newest
	ch <- c.latest
	ch <- c.latestSecs
	ch <- c.recent
	ch <- c.running
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
		counts := map[workflow.StepState]int{workflow.Running: 0, workflow.Succeeded: 0, workflow.Failed: 0, workflow.Cancelled: 0}
		var lastOK, lastScheduled time.Time
		running := map[string]time.Duration{}
		now := c.now()
		wf, _ := c.orch.Workflow(name)
		for _, r := range runs {
			counts[r.State]++
			if r.State == workflow.Succeeded && published(wf, r) {
				lastOK = later(lastOK, r.Ended)
				if s := wf.Step(r.Trigger); s != nil && s.Trigger != nil && s.Trigger.Type == workflow.TriggerScheduled {
					lastScheduled = later(lastScheduled, r.Ended)
				}
			}
			if r.State != workflow.Running {
				continue
			}
			for step, rec := range r.Steps {
				if s := wf.Step(step); rec.State == workflow.Running && s != nil && s.Kind() != workflow.KindTrigger {
					running[step] = max(running[step], now.Sub(rec.Started))
				}
			}
		}
		for step, d := range running {
			ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, d.Seconds(), name, step)
		}
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.recent, prometheus.GaugeValue, float64(n), name, string(state))
		}
		if !lastOK.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, float64(lastOK.Unix()), name)
		}
		if !lastScheduled.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastScheduled, prometheus.GaugeValue, float64(lastScheduled.Unix()), name)
		}
		if pub, err := c.orch.Published(ctx, name); err != nil {
			ch <- prometheus.NewInvalidMetric(c.newest, err)
		} else {
			for _, t := range c.orch.Tables() {
				if p, ok := pub[t.Step]; ok && t.Workflow == name {
					ch <- prometheus.MustNewConstMetric(c.newest, prometheus.GaugeValue, float64(p.Date.UTCMidnight().Unix()), name, t.Step, t.ID())
				}
			}
		}
		if len(runs) > 0 {
			r := runs[0]
			ch <- prometheus.MustNewConstMetric(c.latest, prometheus.GaugeValue, 1, name, string(r.State))
			end := r.Ended
			if end.IsZero() {
				end = now
			}
			ch <- prometheus.MustNewConstMetric(c.latestSecs, prometheus.GaugeValue, end.Sub(r.Created).Seconds(), name)
		}
	}
}

// scheduleCollector exports, per SCHEDULED trigger, when it fires next and
// the time between that fire and the one after (the period within which a
// run is expected to succeed), computed from the cron at scrape time.
type scheduleCollector struct {
	orch   *orchestrator.Orchestrator
	now    func() time.Time
	next   *prometheus.Desc
	period *prometheus.Desc
	paused *prometheus.Desc
}

func newScheduleCollector(orch *orchestrator.Orchestrator, now func() time.Time) *scheduleCollector {
	return &scheduleCollector{
		orch:   orch,
		now:    now,
		next:   prometheus.NewDesc("sluice_schedule_next_fire_timestamp_seconds", "When the SCHEDULED trigger fires next.", []string{"workflow", "trigger"}, nil),
		period: prometheus.NewDesc("sluice_schedule_period_seconds", "Time between the trigger's next fire and the one after it.", []string{"workflow", "trigger"}, nil),
		paused: prometheus.NewDesc("sluice_schedule_paused", "1 while the workflow's schedules are paused (its SCHEDULED triggers start no runs), else 0.", []string{"workflow"}, nil),
	}
}

func (c *scheduleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.next
	ch <- c.period
	ch <- c.paused
}

func (c *scheduleCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.now()
	for _, name := range c.orch.Workflows() {
		wf, _ := c.orch.Workflow(name)
		if _, paused, err := c.orch.SchedulePaused(ctx, name); err != nil {
			ch <- prometheus.NewInvalidMetric(c.paused, err)
		} else {
			v := 0.0
			if paused {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, v, name)
		}
		for _, trig := range wf.StartTriggers() {
			if trig.Trigger.Type != workflow.TriggerScheduled {
				continue
			}
			next := trig.Trigger.Schedule.Next(now)
			after := trig.Trigger.Schedule.Next(next)
			ch <- prometheus.MustNewConstMetric(c.next, prometheus.GaugeValue, float64(next.Unix()), name, trig.Name)
			ch <- prometheus.MustNewConstMetric(c.period, prometheus.GaugeValue, after.Sub(next).Seconds(), name, trig.Name)
		}
	}
}

// fleetCollector exports the live worker processes and their slots per
// queue, as the workers announce themselves in Redis: the worker count
// survives a fleet scaled to zero (it reads 0), where the workers' own
// metrics vanish with them.
type fleetCollector struct {
	orch    *orchestrator.Orchestrator
	workers *prometheus.Desc
	slots   *prometheus.Desc
}

func newFleetCollector(orch *orchestrator.Orchestrator) *fleetCollector {
	return &fleetCollector{
		orch:    orch,
		workers: prometheus.NewDesc("sluice_fleet_workers", "Live worker processes serving the queue.", []string{"queue"}, nil),
		slots:   prometheus.NewDesc("sluice_fleet_slots", "Tasks the live workers serving the queue run at once (their concurrency summed).", []string{"queue"}, nil),
	}
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.workers
	ch <- c.slots
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fleet, err := c.orch.Fleet(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.workers, err)
		return
	}
	for q, f := range fleet {
		ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(f.Workers), q)
		ch <- prometheus.MustNewConstMetric(c.slots, prometheus.GaugeValue, float64(f.Slots), q)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// published tells whether a run published rows: a job step of it wrote
// some (its summary says so). A run of dates whose input holds nothing
// succeeds without publishing anything, which is no sign of fresh data.
// A workflow without a job publishes nothing of its own: any success
// counts.
func published(wf *workflow.Workflow, r redisstore.Run) bool {
	jobs := false
	for _, s := range wf.Steps {
		if s.Job == nil {
			continue
		}
		jobs = true
		var sum struct {
			RowsWritten int64 `json:"rows_written"`
		}
		if rec := r.Steps[s.Name]; json.Unmarshal(rec.Summary, &sum) == nil && sum.RowsWritten > 0 {
			return true
		}
	}
	return !jobs
}
