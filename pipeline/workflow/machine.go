package workflow

import (
	"fmt"
	"slices"
)

// StepState is where one step of a run stands.
type StepState string

// Step and run states. A run is RUNNING, SUCCEEDED, FAILED or CANCELLED; a
// step can also be WAITING (not reached yet) and NOT_RUN (the run ended
// without reaching it, e.g. because the step before it failed). A step that
// was RUNNING when its run was cancelled is CANCELLED.
const (
	Waiting   StepState = "WAITING"
	Running   StepState = "RUNNING"
	Succeeded StepState = "SUCCEEDED"
	Failed    StepState = "FAILED"
	NotRun    StepState = "NOT_RUN"
	Cancelled StepState = "CANCELLED"
)

// Done reports whether the state is final.
func (s StepState) Done() bool { return s == Succeeded || s == Failed || s == NotRun || s == Cancelled }

// States maps step name to state for one run.
type States map[string]StepState

// Transition is what the machine decided: the new states, which crawler and
// job steps to start now, and the run's state.
type Transition struct {
	States States
	Start  []string
	Run    StepState
}

// Begin fires the start triggers (SCHEDULED and ON_DEMAND) of a new run.
func (w *Workflow) Begin() Transition {
	st := make(States, len(w.Steps))
	for _, s := range w.Steps {
		st[s.Name] = Waiting
	}
	var start []string
	for _, trig := range w.StartTriggers() {
		st[trig.Name] = Succeeded
		for _, a := range trig.Trigger.Actions {
			if st[a] == Waiting {
				st[a] = Running
				start = append(start, a)
			}
		}
	}
	return w.settle(st, start)
}

// Finish records that a crawler or job step ended in result and fires the
// conditional triggers that now hold. Finishing a step that is not RUNNING is
// an error: callers make completions idempotent by checking first.
func (w *Workflow) Finish(current States, step string, result StepState) (Transition, error) {
	s := w.Step(step)
	if s == nil || s.Trigger != nil {
		return Transition{}, fmt.Errorf("finish %q: not a crawler or job of workflow %s", step, w.Name)
	}
	if result != Succeeded && result != Failed {
		return Transition{}, fmt.Errorf("finish %q: result must be SUCCEEDED or FAILED, got %s", step, result)
	}
	if current[step] != Running {
		return Transition{}, fmt.Errorf("finish %q: step is %s, not RUNNING", step, current[step])
	}
	st := make(States, len(current))
	for k, v := range current {
		st[k] = v
	}
	st[step] = result
	return w.settle(st, nil), nil
}

// Cancel ends a running run: its RUNNING steps become CANCELLED, those not
// reached NOT_RUN, and the run CANCELLED. Nothing starts.
func (w *Workflow) Cancel(current States) Transition {
	st := make(States, len(current))
	for k, v := range current {
		switch v {
		case Running:
			st[k] = Cancelled
		case Waiting:
			st[k] = NotRun
		default:
			st[k] = v
		}
	}
	return Transition{States: st, Run: Cancelled}
}

// Retry takes a FAILED run up again from where it failed: its FAILED
// crawler and job steps become RUNNING again (their work resumes), and the
// steps the failure left NOT_RUN WAITING, so that the triggers after the
// retried steps fire as in a first run. Steps that SUCCEEDED stay so.
func (w *Workflow) Retry(current States) (Transition, error) {
	st := make(States, len(current))
	var start []string
	for _, s := range w.Steps {
		switch v := current[s.Name]; {
		case v == Failed && s.Trigger == nil:
			st[s.Name] = Running
			start = append(start, s.Name)
		case v == NotRun:
			st[s.Name] = Waiting
		default:
			st[s.Name] = v
		}
	}
	if len(start) == 0 {
		return Transition{}, fmt.Errorf("retry: no step of the run failed")
	}
	return Transition{States: st, Start: start, Run: Running}, nil
}

// settle fires every conditional trigger whose predicate holds, until
// nothing changes, then decides whether the run has ended.
func (w *Workflow) settle(st States, start []string) Transition {
	for changed := true; changed; {
		changed = false
		for _, s := range w.Steps {
			t := s.Trigger
			if t == nil || t.Type != TriggerConditional || st[s.Name] != Waiting || !t.holds(st) {
				continue
			}
			st[s.Name] = Succeeded
			changed = true
			for _, a := range t.Actions {
				if st[a] == Waiting {
					st[a] = Running
					start = append(start, a)
				}
			}
		}
	}
	run := Running
	if !slices.ContainsFunc(w.Steps, func(s StepSpec) bool { return st[s.Name] == Running }) {
		run = Succeeded
		for _, s := range w.Steps {
			switch st[s.Name] {
			case Failed:
				run = Failed
			case Waiting:
				st[s.Name] = NotRun
			}
		}
	}
	return Transition{States: st, Start: start, Run: run}
}

func (t *TriggerSpec) holds(st States) bool {
	if t.Logical == "ANY" {
		return slices.ContainsFunc(t.Conditions, func(c Condition) bool { return st[c.Step] == c.State })
	}
	for _, c := range t.Conditions {
		if st[c.Step] != c.State {
			return false
		}
	}
	return true
}
