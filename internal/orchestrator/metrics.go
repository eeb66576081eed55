package orchestrator

import (
	"github.com/prometheus/client_golang/prometheus"

	"sluice/pipeline/job"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// Metrics are the step series: what each crawler and job step did, labelled
// by workflow and step (never by run, so that their number stays bounded).
// They are recorded once per step end, by the process whose Finish ended
// the step (a worker, or the scheduler's sweep of archived tasks), so a
// retried or duplicated task never counts twice; a job's figures come from
// its reconciled summary. Sum them over processes. Every series of a loaded
// step exists from the start at zero (except the per-reason quarantine
// series), so a worker that lives for one run still shows its increase.
type Metrics struct {
	seconds         *prometheus.HistogramVec // workflow, step, state
	inputBytes      *prometheus.CounterVec
	inputCompressed *prometheus.CounterVec
	inputLines      *prometheus.CounterVec
	rowsWritten     *prometheus.CounterVec
	duplicates      *prometheus.CounterVec
	outsideWindow   *prometheus.CounterVec
	filteredOut     *prometheus.CounterVec
	repairedUTF8    *prometheus.CounterVec
	quarantined     *prometheus.CounterVec // workflow, step, reason
	partitions      *prometheus.CounterVec // workflow, step, result
	outputBytes     *prometheus.CounterVec
	outputFiles     *prometheus.CounterVec
	icebergSeconds  *prometheus.HistogramVec // workflow, step
	icebergCommits  *prometheus.CounterVec   // workflow, step, result
	icebergRetries  *prometheus.CounterVec
	taskRetries     *prometheus.CounterVec // workflow, step, type
	tasksArchived   *prometheus.CounterVec // workflow, step, type
	collectors      []prometheus.Collector
	jobCounters     []*prometheus.CounterVec
}

var (
	endedStates      = []workflow.StepState{workflow.Succeeded, workflow.Failed, workflow.Cancelled}
	partitionResults = []string{"rebuilt", "skipped"}
	// An Iceberg job's snapshot commit landed, or an earlier attempt of
	// the step had landed it (a retried commit task found it).
	icebergResults = []string{"landed", "found"}
)

func newMetrics(workflows map[string]*workflow.Workflow) *Metrics {
	wfStep := []string{"workflow", "step"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append(wfStep, labels...))
	}
	m := &Metrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_step_seconds",
			Help:    "Duration of ended crawler and job steps, from RUNNING to their end, by final state (SUCCEEDED, FAILED, CANCELLED).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 16), // 1 s .. 9 h
		}, []string{"workflow", "step", "state"}),
		inputBytes:      counter("sluice_step_input_bytes_total", "Uncompressed input bytes job steps read."),
		inputCompressed: counter("sluice_step_input_compressed_bytes_total", "Compressed input bytes job steps read (as stored)."),
		inputLines:      counter("sluice_step_input_lines_total", "Input lines job steps read."),
		rowsWritten:     counter("sluice_step_rows_written_total", "Rows job steps wrote to output partitions."),
		duplicates:      counter("sluice_step_duplicates_total", "Duplicate copies of events job steps collapsed."),
		outsideWindow:   counter("sluice_step_outside_window_total", "Input lines whose date lies outside the run's window."),
		filteredOut:     counter("sluice_step_filtered_out_total", "Rows the job's where left out."),
		repairedUTF8:    counter("sluice_step_repaired_utf8_total", "Input lines whose invalid UTF-8 bytes job steps replaced by U+FFFD (also counted as read)."),
		quarantined:     counter("sluice_step_quarantined_total", "Input lines job steps sent to quarantine, by reason.", "reason"),
		partitions:      counter("sluice_step_partitions_total", "Partitions of the window job steps rebuilt or skipped (input unchanged).", "result"),
		outputBytes:     counter("sluice_step_output_bytes_total", "Bytes of the output files job steps published."),
		outputFiles:     counter("sluice_step_output_files_total", "Output files job steps published."),
		icebergSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_iceberg_commit_seconds",
			Help:    "Time an Iceberg job step's snapshot commit took (loading the table, staging the run's files, the catalog's compare-and-swap, retries included).",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 10), // 5 ms .. 98 s
		}, wfStep),
		icebergCommits: counter("sluice_iceberg_commits_total", "Iceberg job steps' snapshot commits, by result: landed, or found (an earlier attempt had landed it).", "result"),
		icebergRetries: counter("sluice_iceberg_commit_conflicts_total", "Iceberg snapshot commits that lost the catalog's optimistic-concurrency race to another writer and were tried again on the new table."),
		taskRetries:    counter("sluice_step_task_retries_total", "Task attempts of the step that failed and that asynq retries, by task type.", "type"),
		tasksArchived:  counter("sluice_step_tasks_archived_total", "Tasks of the step that failed for the last time (retries used up, or an error no retry fixes) and that asynq archived, by task type.", "type"),
	}
	m.jobCounters = []*prometheus.CounterVec{m.inputBytes, m.inputCompressed, m.inputLines, m.rowsWritten, m.duplicates, m.outsideWindow, m.filteredOut, m.repairedUTF8, m.outputBytes, m.outputFiles}
	m.collectors = []prometheus.Collector{m.seconds, m.quarantined, m.partitions, m.taskRetries, m.tasksArchived, m.icebergSeconds, m.icebergCommits, m.icebergRetries}
	for _, c := range m.jobCounters {
		m.collectors = append(m.collectors, c)
	}
	for name, wf := range workflows {
		for i := range wf.Steps {
			m.init(name, &wf.Steps[i])
		}
	}
	return m
}

// init creates the series of one step at zero.
func (m *Metrics) init(wf string, s *workflow.StepSpec) {
	kind := s.Kind()
	if kind == workflow.KindTrigger {
		return
	}
	for _, st := range endedStates {
		m.seconds.WithLabelValues(wf, s.Name, string(st))
	}
	for _, typ := range tasks.TypesOf(kind) {
		m.taskRetries.WithLabelValues(wf, s.Name, typ)
		m.tasksArchived.WithLabelValues(wf, s.Name, typ)
	}
	if kind != workflow.KindJob {
		return
	}
	for _, c := range m.jobCounters {
		c.WithLabelValues(wf, s.Name)
	}
	for _, r := range partitionResults {
		m.partitions.WithLabelValues(wf, s.Name, r)
	}
	if s.Job.Iceberg() {
		m.icebergSeconds.WithLabelValues(wf, s.Name)
		m.icebergRetries.WithLabelValues(wf, s.Name)
		for _, r := range icebergResults {
			m.icebergCommits.WithLabelValues(wf, s.Name, r)
		}
	}
}

// Describe and Collect make Metrics a prometheus.Collector: register
// Orchestrator.Metrics with the process's registry.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
}

func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors {
		c.Collect(ch)
	}
}

// TaskRetried counts a task attempt that failed and will be retried.
func (m *Metrics) TaskRetried(wf, step, typ string) {
	m.taskRetries.WithLabelValues(wf, step, typ).Inc()
}

// TaskArchived counts a task that failed for the last time.
func (m *Metrics) TaskArchived(wf, step, typ string) {
	m.tasksArchived.WithLabelValues(wf, step, typ).Inc()
}

// stepEnded records a step that this process just ended.
func (m *Metrics) stepEnded(wf, step string, state workflow.StepState, seconds float64, summary any) {
	m.seconds.WithLabelValues(wf, step, string(state)).Observe(seconds)
	s, ok := summary.(*job.Summary)
	if !ok || s == nil {
		return
	}
	add := func(c *prometheus.CounterVec, n int64) { c.WithLabelValues(wf, step).Add(float64(n)) }
	add(m.inputBytes, s.InputBytes)
	add(m.inputCompressed, s.InputBytesCompressed)
	add(m.inputLines, s.LinesRead)
	add(m.rowsWritten, s.RowsWritten)
	add(m.duplicates, s.Duplicates)
	add(m.outsideWindow, s.OutsideWindow)
	add(m.filteredOut, s.FilteredOut)
	add(m.repairedUTF8, s.RepairedUTF8)
	add(m.outputBytes, s.OutputBytes)
	files := 0
	for _, n := range s.Files {
		files += n
	}
	add(m.outputFiles, int64(files))
	for reason, n := range s.Quarantined {
		m.quarantined.WithLabelValues(wf, step, reason).Add(float64(n))
	}
	m.partitions.WithLabelValues(wf, step, "rebuilt").Add(float64(len(s.Rebuilt)))
	m.partitions.WithLabelValues(wf, step, "skipped").Add(float64(len(s.Skipped)))
	if ic := s.Iceberg; ic != nil {
		result := "landed"
		if !ic.Landed {
			result = "found"
		}
		m.icebergCommits.WithLabelValues(wf, step, result).Inc()
		m.icebergSeconds.WithLabelValues(wf, step).Observe(float64(ic.CommitMillis) / 1000)
		m.icebergRetries.WithLabelValues(wf, step).Add(float64(max(ic.Attempts-1, 0)))
	}
}
