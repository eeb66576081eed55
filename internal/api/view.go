package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"sluice/internal/redisstore"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

// MonitoringPath is where asynqmon is mounted.
const MonitoringPath = "/monitoring"

// Window is a window of dates, both inclusive (ISO dates).
type Window struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

func windowOf(w civil.Window) Window { return Window{Start: w.Start.String(), End: w.End.String()} }

// Run is a run as the API shows it.
type Run struct {
	ID       string `json:"id"`
	Workflow string `json:"workflow"`
	Window   Window `json:"window"`
	State    string `json:"state"`
	// Trigger is what started the run (a schedule trigger's name,
	// "on-demand", "api", "console"); StartedBy who asked, when known.
	Trigger     string `json:"trigger"`
	StartedBy   string `json:"started_by,omitempty"`
	Force       bool   `json:"force"`
	AllowShrink bool   `json:"allow_shrink"`
	// Retries counts the retries of the run after it failed (POST
	// …/retry), RetriedBy who asked for the last.
	Retries         int        `json:"retries,omitempty"`
	RetriedBy       string     `json:"retried_by,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	EndedAt         *time.Time `json:"ended_at,omitempty"`
	DurationSeconds float64    `json:"duration_seconds"`
	// Steps are in workflow order; only a single run's answer has them.
	Steps []Step `json:"steps,omitempty"`
	Links Links  `json:"links"`
}

// Links point to the run's pages.
type Links struct {
	Self    string `json:"self"`
	Console string `json:"console"`
}

// Step is one step of a run.
type Step struct {
	Name            string     `json:"name"`
	Kind            string     `json:"kind"`
	State           string     `json:"state"`
	StartedAt       *time.Time `json:"started_at,omitempty"`
	EndedAt         *time.Time `json:"ended_at,omitempty"`
	DurationSeconds *float64   `json:"duration_seconds,omitempty"`
	Progress        *Progress  `json:"progress,omitempty"`
	Error           string     `json:"error,omitempty"`
	// PreviousError is what the step failed with before a retry took it
	// up again.
	PreviousError string `json:"previous_error,omitempty"`
	// Summary is what the step reported: a crawl's result, a job's
	// reconciliation, partitions and quarantine.
	Summary json.RawMessage `json:"summary,omitempty"`
	// After are the steps whose state this one waits on (the graph's
	// edges): a trigger's conditions, a crawler's or job's trigger.
	After []string `json:"after,omitempty"`
	// Tasks are the step's asynq tasks, with their asynqmon pages.
	Tasks []Task `json:"tasks,omitempty"`
}

// Progress is how far a running job phase is.
type Progress struct {
	Phase string `json:"phase"`
	Done  int    `json:"done"`
	Total int    `json:"total"`
	Unit  string `json:"unit"`
	Text  string `json:"text"`
}

// Task names one asynq task of a step.
type Task struct {
	ID    string `json:"id"`
	Queue string `json:"queue"`
	Kind  string `json:"kind"`  // plan, map, split, reduce, encode, commit, crawl (bucket: the split task of runs before its rename)
	Label string `json:"label"` // "map 00007", "reduce 2026-10-31 #3", "encode 2026-10-31 #0", "commit 2026-10-31"
	URL   string `json:"url"`   // its asynqmon page
	// Outcome is how its last attempt ended, when the timeline knows.
	Outcome string `json:"outcome,omitempty"`
}

var progressLine = regexp.MustCompile(`^(\S+) (\d+)/(\d+)(?: (\S+))?$`)

// ParseProgress reads a step's progress line ("map 12/40 shards").
func ParseProgress(line string) *Progress {
	if line == "" {
		return nil
	}
	p := &Progress{Text: line}
	if m := progressLine.FindStringSubmatch(line); m != nil {
		p.Phase, p.Unit = m[1], m[4]
		p.Done, _ = strconv.Atoi(m[2])
		p.Total, _ = strconv.Atoi(m[3])
	}
	return p
}

// RunOf is a run's API view; withSteps adds the steps (in wf's order).
func RunOf(r redisstore.Run, wf *workflow.Workflow, withSteps bool) Run {
	out := Run{
		ID: r.ID, Workflow: r.Workflow, Window: windowOf(r.Window), State: string(r.State), Trigger: r.Trigger, StartedBy: r.By,
		Force: r.Force, AllowShrink: r.AllowShrink, Retries: r.Retries, RetriedBy: r.RetriedBy, CreatedAt: r.Created.UTC(), UpdatedAt: r.Updated.UTC(),
		Links: Links{Self: "/api/v1/runs/" + r.ID, Console: "/console/runs/" + r.ID},
	}
	end := time.Now()
	if !r.Ended.IsZero() {
		e := r.Ended.UTC()
		out.EndedAt, end = &e, r.Ended
	}
	out.DurationSeconds = roundSeconds(end.Sub(r.Created))
	if !withSteps {
		return out
	}
	guess := wf == nil
	if wf == nil {
		// The workflow is not loaded (a reader without its file): the
		// steps the run recorded, in the order they started.
		wf = &workflow.Workflow{}
		for _, name := range slices.SortedFunc(maps.Keys(r.Steps), func(a, b string) int {
			if c := r.Steps[a].Started.Compare(r.Steps[b].Started); c != 0 && !r.Steps[a].Started.IsZero() && !r.Steps[b].Started.IsZero() {
				return c
			}
			return strings.Compare(a, b)
		}) {
			wf.Steps = append(wf.Steps, workflow.StepSpec{Name: name})
		}
	}
	for i := range wf.Steps {
		s := &wf.Steps[i]
		rec := r.Steps[s.Name]
		st := Step{Name: s.Name, Kind: string(s.Kind()), State: string(rec.State), Error: CleanError(rec.Error), PreviousError: CleanError(rec.PreviousError),
			Progress: ParseProgress(rec.Progress), Summary: rec.Summary, After: after(wf, s)}
		if guess {
			st.Kind = guessKind(rec.Summary)
		}
		if !rec.Started.IsZero() {
			t := rec.Started.UTC()
			st.StartedAt = &t
			e := time.Now()
			if !rec.Ended.IsZero() {
				e = rec.Ended
				te := e.UTC()
				st.EndedAt = &te
			}
			d := roundSeconds(e.Sub(rec.Started))
			st.DurationSeconds = &d
			st.Tasks = stepTasks(r, s, rec, st.Progress)
		}
		out.Steps = append(out.Steps, st)
	}
	return out
}

// guessKind tells a job's summary from a crawler's, for a run whose
// workflow is not loaded; "" when there is no summary.
func guessKind(summary json.RawMessage) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(summary, &fields) != nil {
		return ""
	}
	if _, ok := fields["lines_read"]; ok {
		return string(workflow.KindJob)
	}
	if _, ok := fields["partitions_added"]; ok {
		return string(workflow.KindCrawler)
	}
	return ""
}

func roundSeconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

// after lists the steps a step waits on.
func after(wf *workflow.Workflow, s *workflow.StepSpec) []string {
	if s.Trigger != nil {
		var out []string
		for _, c := range s.Trigger.Conditions {
			out = append(out, c.Step)
		}
		return out
	}
	var out []string
	for _, t := range wf.Steps {
		if t.Trigger != nil {
			for _, a := range t.Trigger.Actions {
				if a == s.Name {
					out = append(out, t.Name)
				}
			}
		}
	}
	return out
}

// maxListedTasks bounds how many map, reduce or encode tasks a step lists.
const maxListedTasks = 64

// stepTasks are the tasks a started step has (or had) when its timeline
// is not at hand: their ids are deterministic (package tasks), so they are
// named from the run's window, the progress and the summary of a running
// or succeeded step.
func stepTasks(r redisstore.Run, s *workflow.StepSpec, rec redisstore.StepRecord, prog *Progress) []Task {
	ref := tasks.StepRef{Workflow: r.Workflow, RunID: r.ID, Step: s.Name}
	task := func(queue, kind, id string) Task {
		_, _, label := taskPart(r.ID, s.Name, id)
		return Task{ID: id, Queue: queue, Kind: kind, Label: label, URL: asynqmonURL(queue, id)}
	}
	switch s.Kind() {
	case workflow.KindCrawler:
		return []Task{task(tasks.QueueCrawl, "crawl", tasks.CrawlRunID(ref))}
	case workflow.KindJob:
	default:
		return nil
	}
	q := tasks.QueueTransform
	out := []Task{task(q, "plan", tasks.PlanID(ref))}
	if rec.State != workflow.Running && rec.State != workflow.Succeeded {
		// A failed or cancelled step has no summary to name its tasks by
		// (its timeline does, see Service.Run): its plan is all that is
		// certain.
		return out
	}
	var sum job.Summary
	_ = json.Unmarshal(rec.Summary, &sum)
	shards := sum.Shards
	if prog != nil && prog.Phase == "map" {
		shards = prog.Total
	}
	for i := range min(shards, maxListedTasks) {
		out = append(out, task(q, "map", tasks.MapID(ref, i)))
	}
	if shards > 0 || (prog != nil && prog.Phase != "map") {
		out = append(out, task(q, "split", tasks.SplitID(ref)))
	}
	n := 0
	for _, l := range sum.Layout {
		for i := range l.ReduceTasks() {
			if n++; n <= maxListedTasks {
				out = append(out, task(q, "reduce", tasks.ReduceID(ref, l.Date, i)))
			}
		}
	}
	n = 0
	for _, l := range sum.Layout {
		for f := range l.EncodeTasks() {
			if n++; n <= maxListedTasks {
				out = append(out, task(q, "encode", tasks.EncodeID(ref, l.Date, f)))
			}
		}
	}
	for _, d := range r.Window.Dates() {
		if _, rebuilt := sum.Rebuilt[d.String()]; rebuilt || rec.Summary == nil {
			out = append(out, task(q, "commit", tasks.CommitID(ref, d.String())))
		}
	}
	return out
}

// Workflow is a loaded workflow: its steps (the graph) and schedules.
type Workflow struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Steps       []WfStep   `json:"steps"`
	Schedules   []Schedule `json:"schedules,omitempty"`
	// Paused, when set, says the schedules are paused: they start no
	// runs until resumed.
	Paused *Pause `json:"paused,omitempty"`
}

// WfStep is a step of a workflow.
type WfStep struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	After []string `json:"after,omitempty"`
}

// Schedule is a SCHEDULED trigger and its next fire times.
type Schedule struct {
	Trigger  string `json:"trigger"`
	Cron     string `json:"cron"`
	TimeZone string `json:"timezone"`
	Next     []Fire `json:"next"`
}

// Fire is one fire time and the window its run covers.
type Fire struct {
	At     time.Time `json:"at"`
	Window Window    `json:"window"`
}

// WorkflowOf is a workflow's API view, with the next n fire times of each
// schedule after now.
func WorkflowOf(wf *workflow.Workflow, now time.Time, n int) Workflow {
	out := Workflow{Name: wf.Name, Description: wf.Description}
	for i := range wf.Steps {
		s := &wf.Steps[i]
		out.Steps = append(out.Steps, WfStep{Name: s.Name, Kind: string(s.Kind()), After: after(wf, s)})
	}
	for _, trig := range wf.StartTriggers() {
		sc := trig.Trigger.Schedule
		if trig.Trigger.Type != workflow.TriggerScheduled || sc == nil {
			continue
		}
		s := Schedule{Trigger: trig.Name, Cron: sc.Cron, TimeZone: sc.TimeZone}
		t := now
		for range n {
			t = sc.Next(t)
			s.Next = append(s.Next, Fire{At: t.UTC(), Window: windowOf(sc.WindowFor(t))})
		}
		out.Schedules = append(out.Schedules, s)
	}
	return out
}

// DryRun is the answer to a dry run.
type DryRun struct {
	Workflow string           `json:"workflow"`
	Window   Window           `json:"window"`
	Force    bool             `json:"force"`
	Steps    []job.StepDryRun `json:"steps"`
	// Active is the run of the same or an overlapping window that is
	// running now, if any: a real start would return or refuse it.
	Active string `json:"active_run,omitempty"`
}

// String is a one-line account of a dry run's step.
func DryRunLine(s job.StepDryRun) string {
	n := 0
	for _, p := range s.Partitions {
		if p.Rebuild {
			n++
		}
	}
	return fmt.Sprintf("%s: %d of %s to rebuild, %s (%s), %s, about %s",
		s.Step, n, Plural(len(s.Partitions), "partition"), Plural(s.InputObjects, "input object"), Plural(int(s.InputBytes), "byte"),
		Plural(s.MapTasks, "map task"), Plural(s.Files, "file"))
}

// Plural is "1 file", "2 files".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
