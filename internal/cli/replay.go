package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"sluice/internal/api"
	"sluice/pipeline/fleetsim"
	"sluice/pipeline/job"
	"sluice/tasks"
)

// replay predicts a job step's wall time on fleets of many sizes from one
// real run: `scheduler show -o json RUN` for the step's layout and wall
// time, and the logs of the workers that ran it for each task's seconds.
func replay(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("replay")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: scheduler replay -run SHOW.json [flags] WORKER.log...")
		fmt.Fprintln(fs.Output(), "\nReplays a real run's job step (its tasks, their measured seconds and the barriers between its phases) on simulated fleets and prints the predicted wall time and speed-up of each. SHOW.json is `scheduler show -o json RUN`; the logs are the workers' (text or JSON) with their \"task done\" lines.")
		fs.PrintDefaults()
	}
	run := fs.String("run", "", "the run as `scheduler show -o json` prints it (a file, - for stdin)")
	stepName := fs.String("step", "", "the job step (default: the run's first job step with a layout)")
	workersFlag := fs.String("workers", "1,2,4,8,16,32,64", "fleet sizes to predict, comma-separated (workers of one slot each)")
	measured := fs.Int("measured-workers", 0, "slots that ran the measured run (default: the number of logs)")
	format := fs.String("o", "text", "output: text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *run == "" || fs.NArg() == 0 {
		fs.Usage()
		return usageErr(errors.New("replay needs -run and at least one worker log"))
	}
	sizes, err := parseSizes(*workersFlag)
	if err != nil {
		return usageErr(fmt.Errorf("-workers: %w", err))
	}
	if *measured == 0 {
		*measured = fs.NArg()
	}
	if *format != "text" && *format != "json" {
		return usageErr(fmt.Errorf("-o: %q is not text or json", *format))
	}
	r, step, err := readReplayRun(*run, *stepName)
	if err != nil {
		return err
	}
	var sum job.Summary
	if err := json.Unmarshal(step.Summary, &sum); err != nil || len(sum.Layout) == 0 {
		return fmt.Errorf("step %s of run %s has no layout in its summary (a run of an older Sluice, or a step that did not finish)", step.Name, r.ID)
	}
	costs := map[fleetsim.TaskID]float64{}
	for _, path := range fs.Args() {
		if err := readTaskLog(path, r.ID, step.Name, costs); err != nil {
			return err
		}
	}
	var layouts []fleetsim.DateLayout
	for _, l := range sum.Layout {
		layouts = append(layouts, fleetsim.DateLayout{Date: l.Date, Slices: l.Slices, ColumnGroups: l.ColumnGroups, Converted: l.Converted})
	}
	g := fleetsim.NewGraph(sum.Shards, layouts)
	if step.DurationSeconds == nil {
		return fmt.Errorf("step %s of run %s has no duration: it has not ended", step.Name, r.ID)
	}
	wall := *step.DurationSeconds
	dispatch, err := g.Calibrate(costs, *measured, wall)
	if err != nil {
		return fmt.Errorf("run %s step %s: %w (give every worker's log)", r.ID, step.Name, err)
	}
	c, err := g.Costs(costs, dispatch)
	if err != nil {
		return err
	}
	work, longest := fleetsim.Work(c)
	out := replayResult{Run: r.ID, Step: step.Name, Tasks: len(g.Tasks), MeasuredWorkers: *measured, MeasuredSeconds: wall,
		DispatchSeconds: dispatch.Seconds(), WorkSeconds: work, LongestSeconds: longest, Parallelism: work / longest}
	base := g.Simulate(c, 1)
	for _, n := range sizes {
		t := g.Simulate(c, n)
		out.Predictions = append(out.Predictions, prediction{Workers: n, Seconds: t, SpeedUp: base / t})
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(stdout, "run %s, step %s: %d tasks, %.1f s of work, longest task %.2f s (parallelism available %.1f)\n",
		out.Run, out.Step, out.Tasks, work, longest, out.Parallelism)
	fmt.Fprintf(stdout, "measured on %d worker(s): %.2f s; dispatch per task calibrated to %.0f ms\n\n", *measured, wall, dispatch.Seconds()*1000)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workers\tpredicted s\tspeed-up\t")
	for _, p := range out.Predictions {
		fmt.Fprintf(tw, "%d\t%.2f\t%.2fx\t\n", p.Workers, p.Seconds, p.SpeedUp)
	}
	return tw.Flush()
}

type replayResult struct {
	Run             string       `json:"run"`
	Step            string       `json:"step"`
	Tasks           int          `json:"tasks"`
	MeasuredWorkers int          `json:"measured_workers"`
	MeasuredSeconds float64      `json:"measured_seconds"`
	DispatchSeconds float64      `json:"dispatch_seconds"`
	WorkSeconds     float64      `json:"work_seconds"`
	LongestSeconds  float64      `json:"longest_task_seconds"`
	Parallelism     float64      `json:"parallelism"`
	Predictions     []prediction `json:"predictions"`
}

type prediction struct {
	Workers int     `json:"workers"`
	Seconds float64 `json:"seconds"`
	SpeedUp float64 `json:"speed_up"`
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a number of workers", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// readReplayRun reads `scheduler show -o json` output and picks the step.
func readReplayRun(path, stepName string) (api.Run, api.Step, error) {
	var r api.Run
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return r, api.Step{}, fmt.Errorf("-run: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, api.Step{}, fmt.Errorf("-run %s: not the JSON of `scheduler show -o json`: %w", path, err)
	}
	for _, s := range r.Steps {
		if s.Kind != "job" || (stepName != "" && s.Name != stepName) {
			continue
		}
		if stepName != "" || strings.Contains(string(s.Summary), `"layout"`) {
			return r, s, nil
		}
	}
	return r, api.Step{}, fmt.Errorf("run %s has no job step %q with a layout", r.ID, stepName)
}

// readTaskLog adds the seconds of every task of the run's step that a
// worker log says ended well ("task done", outcome ok); a task retried
// counts its last good attempt.
func readTaskLog(path, runID, step string, costs map[fleetsim.TaskID]float64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := tasks.IDPart(runID) + ":" + tasks.IDPart(step)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "task done") {
			continue
		}
		kv := logFields(line)
		if kv["msg"] != "task done" || kv["outcome"] != "ok" {
			continue
		}
		id, ok := taskIDOf(kv["id"], prefix)
		if !ok {
			continue
		}
		secs, err := strconv.ParseFloat(kv["seconds"], 64)
		if err != nil {
			return fmt.Errorf("%s: %q: seconds %q", path, line, kv["seconds"])
		}
		costs[id] = secs
	}
	return sc.Err()
}

// logFields reads a log line of slog's text or JSON handler into its
// fields.
func logFields(line string) map[string]string {
	out := map[string]string{}
	if strings.HasPrefix(line, "{") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			for k, v := range m {
				out[k] = fmt.Sprint(v)
			}
		}
		return out
	}
	for rest := line; rest != ""; {
		rest = strings.TrimLeft(rest, " ")
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		if strings.HasPrefix(v, `"`) {
			// A quoted value: up to the closing quote that is not escaped.
			end := 1
			for end < len(v) && (v[end] != '"' || v[end-1] == '\\') {
				end++
			}
			if s, err := strconv.Unquote(v[:min(end+1, len(v))]); err == nil {
				out[k] = s
			}
			rest = v[min(end+1, len(v)):]
			continue
		}
		val, r, _ := strings.Cut(v, " ")
		out[k] = val
		rest = r
	}
	return out
}

// taskIDOf reads a task id of the step (prefix is its run and step as
// task ids write them).
func taskIDOf(id, prefix string) (fleetsim.TaskID, bool) {
	rest, ok := strings.CutPrefix(id, prefix+":")
	if !ok {
		return fleetsim.TaskID{}, false
	}
	parts := strings.Split(rest, ":")
	date := func(s string) string {
		if len(s) != 8 {
			return s
		}
		return s[:4] + "-" + s[4:6] + "-" + s[6:]
	}
	index := func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	if parts[0] == "bucket" {
		parts[0] = string(fleetsim.Split) // the split task was the bucket task in older releases
	}
	switch fleetsim.Phase(parts[0]) {
	case fleetsim.Plan, fleetsim.Split:
		return fleetsim.TaskID{Phase: fleetsim.Phase(parts[0])}, len(parts) == 1
	case fleetsim.Map:
		n, ok := index(parts[len(parts)-1])
		return fleetsim.TaskID{Phase: fleetsim.Map, Index: n}, ok && len(parts) == 2
	case fleetsim.Commit:
		return fleetsim.TaskID{Phase: fleetsim.Commit, Date: date(parts[len(parts)-1])}, len(parts) == 2
	case fleetsim.Reduce, fleetsim.Encode:
		if len(parts) != 3 {
			return fleetsim.TaskID{}, false
		}
		n, ok := index(parts[2])
		return fleetsim.TaskID{Phase: fleetsim.Phase(parts[0]), Date: date(parts[1]), Index: n}, ok
	}
	return fleetsim.TaskID{}, false
}
