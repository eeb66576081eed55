// Package workflow owns what a workflow is and how its runs progress: the
// YAML declaration (Load), the civil-date window a run covers (Window), and
// the trigger state machine (Machine) that decides, from the states of the
// steps so far, which steps start next and when a run has ended.
//
// Everything here is pure: persistence of runs lives in pipeline/runstore and
// queueing in the worker and scheduler wiring.
package workflow
