// Package workflow owns what a workflow is and how its runs progress: the
// YAML declaration (Load, with every field checked and named in errors) and
// the trigger state machine (Begin, Finish) that decides, from the states of
// the steps so far, which steps start next and when a run has ended.
//
// Everything here is pure: runs are kept by internal/redisstore, and
// queueing is the orchestrator's.
package workflow
