package orchestrator

import (
	"errors"
	"fmt"
	"time"

	"sluice/internal/config"
	"sluice/pipeline/civil"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
)

// futureDays is how many days past today, in the zone of the job's data,
// a window may reach. Events are dated by the device clock corrected for
// its skew, so a date after today can hold events only from a clock that
// the correction missed; one day of slack lets those through, and a run
// of next year's partitions (which would publish empty partitions and
// look like a fresh success) is refused.
const futureDays = 1

// ErrBadWindow is returned for a window no run may have: wider than the
// maximum, or reaching past what the input can hold yet.
var ErrBadWindow = errors.New("window refused")

// windowRules are, per workflow, what CheckWindow needs: the zones of its
// jobs' data (the latest date allowed is computed in each).
type windowRules struct {
	zones []*time.Location
}

func newWindowRules(wf *workflow.Workflow) (windowRules, error) {
	var r windowRules
	for i := range wf.Steps {
		j := wf.Steps[i].Job
		if j == nil {
			continue
		}
		spec, err := transform.FromJob(j)
		if err != nil {
			return r, fmt.Errorf("steps[%d] (%s): %w", i, wf.Steps[i].Name, err)
		}
		loc, err := civil.LoadZone(spec.TimeZone)
		if err != nil {
			return r, fmt.Errorf("steps[%d] (%s).job.transform.time_zone: %w", i, wf.Steps[i].Name, err)
		}
		r.zones = append(r.zones, loc)
	}
	if len(r.zones) == 0 {
		r.zones = []*time.Location{time.UTC}
	}
	return r, nil
}

// latest is the last date a window may reach at now: today in the zone of
// each job's data, plus futureDays, the earliest of them.
func (r windowRules) latest(now time.Time) civil.Date {
	var out civil.Date
	for i, loc := range r.zones {
		d := civil.DateOf(now.In(loc)).AddDays(futureDays)
		if i == 0 || d.Before(out) {
			out = d
		}
	}
	return out
}

// checkSchedules refuses a schedule whose runs' windows would be wider than
// the maximum: they would never start.
func checkSchedules(wf *workflow.Workflow, maxDays int) error {
	for i := range wf.Steps {
		t := wf.Steps[i].Trigger
		if t == nil || t.Schedule == nil || t.Type != workflow.TriggerScheduled {
			continue
		}
		if t.Schedule.WindowDays > maxDays {
			return fmt.Errorf("workflow %s: steps[%d] (%s).trigger.schedule.window_days: %d is more than %s allows (%d): raise it or narrow the schedule's window",
				wf.Name, i, wf.Steps[i].Name, t.Schedule.WindowDays, config.Setting("max-window-days"), maxDays)
		}
	}
	return nil
}

// CheckWindow refuses (ErrBadWindow) a window of more than the maximum
// number of dates, or one that reaches past tomorrow in the zone of the
// workflow's data: what every start and dry run is held to, so that no
// request can make the scheduler plan or a run publish centuries of empty
// partitions.
func (o *Orchestrator) CheckWindow(name string, win civil.Window) error {
	rules, ok := o.windows[name]
	if !ok {
		_, err := o.Workflow(name)
		return err
	}
	if err := win.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadWindow, err)
	}
	if days := win.End.Days() - win.Start.Days() + 1; days > int64(o.maxWindowDays) {
		return fmt.Errorf("%w: %s holds %d dates; a run may cover at most %d (%s): split it into several runs",
			ErrBadWindow, win, days, o.maxWindowDays, config.Setting("max-window-days"))
	}
	if latest := rules.latest(o.now()); latest.Before(win.End) {
		return fmt.Errorf("%w: %s reaches past %s, the last date the input can hold events of yet (tomorrow in the data's time zone)",
			ErrBadWindow, win, latest)
	}
	return nil
}
