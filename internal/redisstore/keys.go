package redisstore

import "time"

// Every Redis key Sluice uses (besides asynq's own "asynq:*") is built
// here, so that the whole key space reads in one place:
//
//	sluice:run:<id>                          hash  a run: its fields and one JSON field per step (step:<name>)
//	sluice:runs:<workflow>                   zset  run ids by creation time
//	sluice:active:<workflow>                 hash  active runs: run id -> "start end created-ms"
//	sluice:fired:<workflow>:<trigger>:<time> string schedule tick dedupe (7 days)
//	sluice:notified:<run>                    string the run's end was notified (7 days)
//	sluice:tasks:<run>                       hash  the run's timeline: task id -> its attempts (JSON; "dropped" counts those left out)
//	sluice:tasklog:<run>:<task>              list  the log lines (JSON) a task's attempts wrote, the newest kept
//	sluice:session:<sha256 of id>            string a console session (its lifetime): the binding it was made for
//	sluice:paused:<workflow>                 hash  the workflow's schedules are paused: by, at, reason
//	sluice:published:<workflow>              hash  per job step: the newest partition it published rows in (<step>:date, :run, :at)
//	sluice:barrier:<run>:<step>:<phase>      set   finished members of a job phase
//	sluice:barrier:<run>:<step>:<phase>:complete string the member that completed it
//
// and, read by what scales the fleet (KEDA's Redis list scaler, see
// deploy/k8s), asynq's lists of a queue's waiting and running tasks:
//
//	asynq:{<queue>}:pending                  list  task ids waiting to run
//	asynq:{<queue>}:active                   list  task ids running now
const keyPrefix = "sluice:"

func runKey(id string) string   { return keyPrefix + "run:" + id }
func indexKey(wf string) string { return keyPrefix + "runs:" + wf }

// activeKey is a hash of a workflow's active runs. Start reads it to refuse
// a window that overlaps an active run's: two runs rebuilding the same
// partition from different listings could leave it and its bookmark
// describing different inputs.
func activeKey(wf string) string { return keyPrefix + "active:" + wf }

// DedupeKey names one scheduled fire of a trigger, for StartOptions.Dedupe.
func DedupeKey(wf, trigger string, fire time.Time) string {
	return keyPrefix + "fired:" + wf + ":" + trigger + ":" + fire.UTC().Format(time.RFC3339)
}

// noDedupeKey stands in for the dedupe key of a start that has none (the
// start script always takes one).
const noDedupeKey = keyPrefix + "nodedupe"

func notifiedKey(runID string) string { return keyPrefix + "notified:" + runID }

func publishedKey(wf string) string { return keyPrefix + "published:" + wf }

func barrierKey(runID, step, phase string) string {
	return keyPrefix + "barrier:" + runID + ":" + step + ":" + phase
}

// AsynqPendingKey is asynq's list of a queue's pending tasks, and
// AsynqActiveKey its list of running ones (asynq's own layout, which the
// package's tests check against asynq). Sluice never writes them; an
// autoscaler reads their lengths.
func AsynqPendingKey(queue string) string { return asynqQueuePrefix(queue) + "pending" }

// AsynqActiveKey: see AsynqPendingKey.
func AsynqActiveKey(queue string) string { return asynqQueuePrefix(queue) + "active" }

func asynqQueuePrefix(queue string) string { return "asynq:{" + queue + "}:" }
