package workflow

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"sluice/pipeline/civil"
	"sluice/pipeline/storage"
)

// Trigger types, as Glue names them.
const (
	TriggerScheduled   = "SCHEDULED"
	TriggerConditional = "CONDITIONAL"
	TriggerOnDemand    = "ON_DEMAND"
)

// Workflow is one declared workflow: named steps, each a trigger, a crawler
// or a job.
type Workflow struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Catalog is the location (s3://… or file://…) of the data catalog.
	Catalog string     `yaml:"catalog"`
	Steps   []StepSpec `yaml:"steps"`

	byName map[string]*StepSpec
}

// StepSpec is one step of a workflow as its file defines it: exactly one
// of a trigger, a crawler or a job. (A job step at work in a run is a
// job.Step.)
type StepSpec struct {
	Name    string       `yaml:"name"`
	Trigger *TriggerSpec `yaml:"trigger,omitempty"`
	Crawler *CrawlerSpec `yaml:"crawler,omitempty"`
	Job     *JobSpec     `yaml:"job,omitempty"`
}

// StepKind is what a step is: a trigger, a crawler or a job.
type StepKind string

// Step kinds.
const (
	KindTrigger StepKind = "trigger"
	KindCrawler StepKind = "crawler"
	KindJob     StepKind = "job"
)

// Kind says which of trigger, crawler or job the step is.
func (s *StepSpec) Kind() StepKind {
	switch {
	case s.Trigger != nil:
		return KindTrigger
	case s.Crawler != nil:
		return KindCrawler
	default:
		return KindJob
	}
}

// TriggerSpec starts its actions on a schedule, on demand, or when its
// conditions on earlier steps hold.
type TriggerSpec struct {
	Type       string        `yaml:"type"`
	Schedule   *ScheduleSpec `yaml:"schedule,omitempty"`
	Logical    string        `yaml:"logical,omitempty"` // ALL (default) or ANY
	Conditions []Condition   `yaml:"conditions,omitempty"`
	Actions    []string      `yaml:"actions"`
}

// ScheduleSpec is a cron schedule in an IANA time zone, and the window of
// dates a scheduled run covers.
type ScheduleSpec struct {
	Cron     string `yaml:"cron"`
	TimeZone string `yaml:"timezone"`
	// WindowDays is how many dates a scheduled run covers (default 1).
	WindowDays int `yaml:"window_days"`
	// WindowEndOffsetDays is how many days before the fire date the window
	// ends (default 1: yesterday).
	WindowEndOffsetDays *int `yaml:"window_end_offset_days"`

	location *time.Location
	parsed   cron.Schedule
}

// Condition is one predicate of a conditional trigger.
type Condition struct {
	Step  string    `yaml:"step"`
	State StepState `yaml:"state"`
}

// CrawlerSpec catalogs what lies under Path in Location.
type CrawlerSpec struct {
	Location string `yaml:"location"`
	Path     string `yaml:"path"`
	Database string `yaml:"database"`
	Table    string `yaml:"table"`
	// Recrawl is new_folders (default: read only partition folders that
	// are new or changed since the last crawl) or everything.
	Recrawl string `yaml:"recrawl,omitempty"`
	// SchemaChange is what a schema change does: update (default: append
	// new columns, widen types), log (keep the table, record the change)
	// or fail (fail the step).
	SchemaChange string `yaml:"schema_change,omitempty"`
	// SampleFiles and SampleRecords bound the sampling: files read per
	// folder (default 2) and records read per file (default 1000).
	SampleFiles   int `yaml:"sample_files,omitempty"`
	SampleRecords int `yaml:"sample_records,omitempty"`
	// GlueSync, when enabled, copies the table and its partitions to the
	// AWS Glue Data Catalog after each crawl.
	GlueSync *GlueSyncSpec `yaml:"glue_sync,omitempty"`
	// Format iceberg makes the step register and refresh the Iceberg
	// table a job of the workflow publishes at Location (and expire its
	// old snapshots) instead of crawling it; hive (the default) crawls.
	Format string `yaml:"format,omitempty"`
}

// GlueSyncSpec configures the optional copy of a crawled table to the AWS
// Glue Data Catalog.
type GlueSyncSpec struct {
	Enabled bool `yaml:"enabled"`
	// Region of the Glue catalog; empty uses the AWS configuration chain.
	Region string `yaml:"region,omitempty"`
	// Database in Glue; empty uses the crawler's database. It must exist.
	Database string `yaml:"database,omitempty"`
	// Endpoint overrides the Glue endpoint URL (VPC endpoints, tests).
	Endpoint string `yaml:"endpoint,omitempty"`
}

// JobSpec is a transform job. Transform stays a YAML node here so that this
// package does not depend on the transform engine; the worker decodes and
// validates it (see ValidateJob).
type JobSpec struct {
	Input   string `yaml:"input"`
	Output  string `yaml:"output"`
	Scratch string `yaml:"scratch"`
	// Table is the table format of the output (table.go); nil is Hive
	// folders.
	Table     *TableSpec `yaml:"table,omitempty"`
	Transform yaml.Node  `yaml:"transform"`
}

// Step returns the named step, or nil.
func (w *Workflow) Step(name string) *StepSpec { return w.byName[name] }

// Load reads a workflow file. ${VAR} and ${VAR:-default} are expanded from
// the environment first, so one file serves the embedded demo, compose and
// Kubernetes. validateJob, when not nil, checks each job's transform block.
func Load(path string, validateJob func(*JobSpec) error) (*Workflow, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read workflow: %w", err)
	}
	w, err := Parse(raw, validateJob)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// Parse is Load for bytes already read.
func Parse(raw []byte, validateJob func(*JobSpec) error) (*Workflow, error) {
	return ParseWith(raw, os.LookupEnv, validateJob)
}

// ParseWith is Parse with ${VAR} looked up by lookup instead of in the
// process environment (the embedded demo and tests give their locations
// this way).
func ParseWith(raw []byte, lookup func(string) (string, bool), validateJob func(*JobSpec) error) (*Workflow, error) {
	expanded := ExpandEnv(string(raw), lookup)
	dec := yaml.NewDecoder(bytes.NewReader([]byte(expanded)))
	dec.KnownFields(true)
	var w Workflow
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("parse workflow yaml: %w", err)
	}
	if err := w.validate(validateJob); err != nil {
		return nil, err
	}
	return &w, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// ExpandEnv replaces ${VAR} and ${VAR:-default}.
func ExpandEnv(s string, lookup func(string) (string, bool)) string {
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := lookup(m[1]); ok && v != "" {
			return v
		}
		return m[3]
	})
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (w *Workflow) validate(validateJob func(*JobSpec) error) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !namePattern.MatchString(w.Name) {
		bad("name", "must be letters, digits, '-', '_' or '.', got %q", w.Name)
	}
	if w.Catalog == "" {
		bad("catalog", "is required (s3://bucket/prefix or file:///path)")
	} else if _, err := storage.ParseLocation(w.Catalog); err != nil {
		bad("catalog", "%v", err)
	}
	if len(w.Steps) == 0 {
		bad("steps", "at least one step is required")
	}
	w.byName = make(map[string]*StepSpec, len(w.Steps))
	for i := range w.Steps {
		s := &w.Steps[i]
		field := fmt.Sprintf("steps[%d]", i)
		if !namePattern.MatchString(s.Name) {
			bad(field+".name", "must be letters, digits, '-', '_' or '.', got %q", s.Name)
			continue
		}
		field = fmt.Sprintf("steps[%d] (%s)", i, s.Name)
		if _, dup := w.byName[s.Name]; dup {
			bad(field+".name", "duplicate step name")
		}
		w.byName[s.Name] = s
		n := 0
		for _, set := range []bool{s.Trigger != nil, s.Crawler != nil, s.Job != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad(field, "must have exactly one of trigger, crawler or job")
		}
	}
	starts := 0
	for i := range w.Steps {
		s := &w.Steps[i]
		field := fmt.Sprintf("steps[%d] (%s)", i, s.Name)
		switch {
		case s.Trigger != nil:
			if s.Trigger.Type != TriggerConditional {
				starts++
			}
			for _, e := range s.Trigger.validate(w) {
				bad(field+".trigger."+e.field, "%s", e.msg)
			}
		case s.Crawler != nil:
			for _, e := range s.Crawler.validate() {
				bad(field+".crawler"+e.field, "%s", e.msg)
			}
			switch s.Crawler.Format {
			case "", FormatHive:
			case FormatIceberg:
				if w.IcebergJobOf(s.Crawler) == nil {
					bad(field+".crawler.format", "iceberg: no job step of this workflow writes an Iceberg table (table.format: iceberg) at %s", s.Crawler.Location)
				}
			default:
				bad(field+".crawler.format", "must be hive or iceberg, got %q", s.Crawler.Format)
			}
		case s.Job != nil:
			for _, e := range s.Job.validate(validateJob) {
				bad(field+".job"+e.field, "%s", e.msg)
			}
		}
	}
	if starts == 0 && len(w.Steps) > 0 {
		bad("steps", "no SCHEDULED or ON_DEMAND trigger: nothing can start a run")
	}
	if len(errs) == 0 {
		errs = append(errs, w.checkReachable()...)
	}
	return errors.Join(errs...)
}

type fieldError struct{ field, msg string }

// validate checks a crawler's fields; each error's field starts with '.'
// or is empty (the crawler as a whole).
func (c *CrawlerSpec) validate() []fieldError {
	var errs []fieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldError{field, fmt.Sprintf(format, args...)})
	}
	if c.Location == "" {
		bad(".location", "is required")
	} else if _, err := storage.ParseLocation(c.Location); err != nil {
		bad(".location", "%v", err)
	}
	if c.Database == "" {
		bad(".database", "is required")
	}
	if c.Table == "" {
		bad(".table", "is required")
	}
	switch c.Recrawl {
	case "", "new_folders", "everything":
	default:
		bad(".recrawl", "must be new_folders or everything, got %q", c.Recrawl)
	}
	switch c.SchemaChange {
	case "", "update", "log", "fail":
	default:
		bad(".schema_change", "must be update, log or fail, got %q", c.SchemaChange)
	}
	if c.SampleFiles < 0 || c.SampleRecords < 0 {
		bad("", "sample_files and sample_records must not be negative")
	}
	return errs
}

// validate checks a job's locations and, with validateJob, its transform;
// each error's field starts with '.'.
func (j *JobSpec) validate(validateJob func(*JobSpec) error) []fieldError {
	var errs []fieldError
	for _, f := range []struct{ name, v string }{{"input", j.Input}, {"output", j.Output}, {"scratch", j.Scratch}} {
		if f.v == "" {
			errs = append(errs, fieldError{"." + f.name, "is required"})
		} else if _, err := storage.ParseLocation(f.v); err != nil {
			errs = append(errs, fieldError{"." + f.name, err.Error()})
		}
	}
	if j.Table != nil {
		for _, e := range j.Table.validate() {
			errs = append(errs, fieldError{".table." + e.field, e.msg})
		}
	}
	if validateJob != nil {
		if err := validateJob(j); err != nil {
			errs = append(errs, fieldError{".transform", err.Error()})
		}
	}
	return errs
}

func (t *TriggerSpec) validate(w *Workflow) []fieldError {
	var errs []fieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldError{field, fmt.Sprintf(format, args...)})
	}
	switch t.Type {
	case TriggerScheduled:
		if t.Schedule == nil {
			bad("schedule", "is required for a SCHEDULED trigger")
			break
		}
		if err := t.Schedule.compile(); err != nil {
			bad("schedule", "%v", err)
		}
	case TriggerOnDemand:
	case TriggerConditional:
		switch t.Logical {
		case "":
			t.Logical = "ALL"
		case "ALL", "ANY":
		default:
			bad("logical", "must be ALL or ANY, got %q", t.Logical)
		}
		if len(t.Conditions) == 0 {
			bad("conditions", "a CONDITIONAL trigger needs at least one condition")
		}
		for i, c := range t.Conditions {
			f := fmt.Sprintf("conditions[%d]", i)
			target := w.byName[c.Step]
			switch {
			case target == nil:
				bad(f+".step", "unknown step %q", c.Step)
			case target.Trigger != nil:
				bad(f+".step", "%q is a trigger; conditions watch crawlers and jobs", c.Step)
			}
			if c.State != Succeeded && c.State != Failed {
				bad(f+".state", "must be SUCCEEDED or FAILED, got %q", c.State)
			}
		}
	default:
		bad("type", "must be SCHEDULED, ON_DEMAND or CONDITIONAL, got %q", t.Type)
	}
	if t.Type != TriggerConditional && len(t.Conditions) > 0 {
		bad("conditions", "only a CONDITIONAL trigger has conditions")
	}
	if len(t.Actions) == 0 {
		bad("actions", "at least one action is required")
	}
	for i, a := range t.Actions {
		target := w.byName[a]
		switch {
		case target == nil:
			bad(fmt.Sprintf("actions[%d]", i), "unknown step %q", a)
		case target.Trigger != nil:
			bad(fmt.Sprintf("actions[%d]", i), "%q is a trigger; actions start crawlers and jobs", a)
		}
	}
	return errs
}

func (s *ScheduleSpec) compile() error {
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	loc, err := civil.LoadZone(s.TimeZone)
	if err != nil {
		return fmt.Errorf("timezone: %w", err)
	}
	sched, err := cron.ParseStandard(s.Cron)
	if err != nil {
		return fmt.Errorf("cron %q: %w", s.Cron, err)
	}
	if strings.HasPrefix(strings.TrimSpace(s.Cron), "CRON_TZ=") || strings.HasPrefix(strings.TrimSpace(s.Cron), "TZ=") {
		return fmt.Errorf("cron %q: give the zone in timezone, not in the expression", s.Cron)
	}
	if s.WindowDays < 0 {
		return fmt.Errorf("window_days must be positive, got %d", s.WindowDays)
	}
	if s.WindowDays == 0 {
		s.WindowDays = 1
	}
	if s.WindowEndOffsetDays == nil {
		one := 1
		s.WindowEndOffsetDays = &one
	}
	s.location, s.parsed = loc, sched
	return nil
}

// Next returns the first fire time strictly after t.
func (s *ScheduleSpec) Next(t time.Time) time.Time {
	return s.parsed.Next(t.In(s.location))
}

// WindowFor returns the dates a run fired at t covers, counted in the
// schedule's time zone.
func (s *ScheduleSpec) WindowFor(t time.Time) civil.Window {
	end := civil.DateOf(t.In(s.location)).AddDays(-*s.WindowEndOffsetDays)
	return civil.Window{Start: end.AddDays(-(s.WindowDays - 1)), End: end}
}

// checkReachable reports crawlers and jobs no trigger starts: they would sit
// NOT_RUN forever and usually mean a typo.
func (w *Workflow) checkReachable() []error {
	started := map[string]bool{}
	for _, s := range w.Steps {
		if s.Trigger != nil {
			for _, a := range s.Trigger.Actions {
				started[a] = true
			}
		}
	}
	var errs []error
	for i, s := range w.Steps {
		if s.Trigger == nil && !started[s.Name] {
			errs = append(errs, fmt.Errorf("steps[%d] (%s): no trigger starts this step", i, s.Name))
		}
	}
	return errs
}

// StartTriggers are the triggers that begin a run: SCHEDULED and ON_DEMAND.
// An on-demand start fires them all, as Glue's StartWorkflowRun does.
func (w *Workflow) StartTriggers() []*StepSpec {
	var out []*StepSpec
	for i := range w.Steps {
		if t := w.Steps[i].Trigger; t != nil && t.Type != TriggerConditional {
			out = append(out, &w.Steps[i])
		}
	}
	return out
}
