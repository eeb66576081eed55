// Package tasks is the whole contract between the scheduler and the workers:
// task type names, their payloads, constructors and the queues they go to.
// Nothing else is shared between the two processes but Redis and the
// workflow files.
//
// Every task carries a deterministic TaskID, derived from the run, the step
// and the shard or partition, and is retained after completion for as long as
// a run may last. Enqueuing the same work twice therefore fails with
// asynq.ErrTaskIDConflict, which Enqueue treats as "already done": that is
// what makes follow-on enqueues exactly-once even when a shard is retried or
// delivered twice.
package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"sluice/pipeline/fault"
	"sluice/pipeline/workflow"
)

// Task types. A reader who sees one of these in asynqmon finds the payload,
// constructor and worker handler by the same name.
const (
	// TypeCrawlRun runs one crawler step (pipeline/crawl).
	TypeCrawlRun = "crawl:run"
	// TypeTransformPlan plans a job step's shards and fans out the map tasks.
	TypeTransformPlan = "transform:plan"
	// TypeTransformMap processes one shard of input objects.
	TypeTransformMap = "transform:map"
	// TypeTransformSplit splits, once every shard is mapped, each output
	// date into files, row groups, slices and column groups, and fans out
	// the reduce tasks.
	TypeTransformSplit = "transform:split"
	// TypeTransformReduce deduplicates and sorts one slice of a date's
	// virtual buckets into sorted runs, one per column group.
	TypeTransformReduce = "transform:reduce"
	// TypeTransformEncode writes one fragment of an output file: a column
	// group of a row group (or a converted file).
	TypeTransformEncode = "transform:encode"
	// TypeTransformCommit replaces one output partition with its new
	// files; the last one ends the job step.
	TypeTransformCommit = "transform:commit"
)

// TypesOf lists the task types of a kind of step.
func TypesOf(kind workflow.StepKind) []string {
	switch kind {
	case workflow.KindCrawler:
		return []string{TypeCrawlRun}
	case workflow.KindJob:
		return []string{TypeTransformPlan, TypeTransformMap, TypeTransformSplit, TypeTransformReduce, TypeTransformEncode, TypeTransformCommit}
	}
	return nil
}

// Queues. Crawls are short and gate the rest of a run, so workers weight
// them higher by default.
const (
	QueueCrawl     = "crawl"
	QueueTransform = "transform"
)

// Options are the asynq options every task gets.
type Options struct {
	MaxRetry  int
	Timeout   time.Duration
	Retention time.Duration
}

// DefaultOptions suit the example workflow.
var DefaultOptions = Options{MaxRetry: 5, Timeout: 30 * time.Minute, Retention: 48 * time.Hour}

func (o Options) asynq(queue, id string) []asynq.Option {
	return []asynq.Option{asynq.Queue(queue), asynq.TaskID(id), asynq.MaxRetry(o.MaxRetry), asynq.Timeout(o.Timeout), asynq.Retention(o.Retention)}
}

// ResultDone is the result a task that did its work leaves in asynq
// (TaskInfo.Result): a completed task without it ended without doing its
// work (its step had ended, or its run), and a retry of the run runs it
// again.
const ResultDone = "done"

// Reissue is a task again as it was enqueued (its type, payload, queue and
// id) with the options o: what a retry of a run enqueues for a task that
// completed without doing its work.
func Reissue(typ string, payload []byte, queue, id string, o Options) *asynq.Task {
	return asynq.NewTask(typ, payload, o.asynq(queue, id)...)
}

// StepRef names one step of one run.
type StepRef struct {
	Workflow string `json:"workflow"`
	RunID    string `json:"run_id"`
	Step     string `json:"step"`
}

func (r StepRef) String() string { return r.RunID + "/" + r.Step }

// Task ids. Each names the run, the step and the shard, file or date, as
// <run>:<step>[:<phase>[:<member>]], e.g.
// mobile_user.20261030..20261101.20261102T130000Z.a1b2c3:mobile_user_daily:map:00007.
// asynqmon puts ids in URL paths (so an id holds no '/') and shows what
// comes before the first '-' in its ID column (so an id holds no '-': names
// have it replaced by '_', dates are written YYYYMMDD). Names are letters,
// digits, '-', '_' and '.', so the replacement can only make two names of
// a workflow collide when they differ by '-' against '_'; CheckIDs refuses
// such a workflow.

// IDPart is a name as it appears in task ids.
func IDPart(name string) string { return strings.NewReplacer("-", "_", "/", "_").Replace(name) }

func (r StepRef) id(parts ...string) string {
	return strings.Join(append([]string{IDPart(r.RunID), IDPart(r.Step)}, parts...), ":")
}

// CrawlRunID is the id of a crawler step's task.
func CrawlRunID(ref StepRef) string { return ref.id() }

// PlanID is the id of a job step's plan task.
func PlanID(ref StepRef) string { return ref.id("plan") }

// MapID is the id of a job step's map task for one shard.
func MapID(ref StepRef, shard int) string { return ref.id("map", fmt.Sprintf("%05d", shard)) }

// SplitID is the id of a job step's split task.
func SplitID(ref StepRef) string { return ref.id("split") }

// ReduceID is the id of the reduce task of slice i of a date (YYYY-MM-DD).
func ReduceID(ref StepRef, date string, i int) string {
	return ref.id("reduce", strings.ReplaceAll(date, "-", ""), fmt.Sprintf("%05d", i))
}

// EncodeID is the id of the encode task of fragment f of a date
// (YYYY-MM-DD).
func EncodeID(ref StepRef, date string, f int) string {
	return ref.id("encode", strings.ReplaceAll(date, "-", ""), fmt.Sprintf("%05d", f))
}

// CommitID is the id of the commit task of a date (YYYY-MM-DD).
func CommitID(ref StepRef, date string) string {
	return ref.id("commit", strings.ReplaceAll(date, "-", ""))
}

// OfRun tells whether a task id is one of a run's.
func OfRun(taskID, runID string) bool { return strings.HasPrefix(taskID, IDPart(runID)+":") }

// CheckIDs refuses names that would give two steps (or two workflows) the
// same task ids.
func CheckIDs(names []string) error {
	seen := map[string]string{}
	for _, n := range names {
		p := IDPart(n)
		if prev, ok := seen[p]; ok && prev != n {
			return fmt.Errorf("names %q and %q differ only by '-' and '_', which task ids do not tell apart; rename one", prev, n)
		}
		seen[p] = n
	}
	return nil
}

// Ref is the step a task works for; every payload embeds its StepRef.
func (r StepRef) Ref() StepRef { return r }

// CrawlRunPayload is the payload of TypeCrawlRun.
type CrawlRunPayload struct {
	StepRef
}

// NewCrawlRunTask runs a crawler step.
func NewCrawlRunTask(p CrawlRunPayload, o Options) (*asynq.Task, error) {
	return newTask(TypeCrawlRun, p, o.asynq(QueueCrawl, CrawlRunID(p.StepRef))...)
}

// TransformPlanPayload is the payload of TypeTransformPlan.
type TransformPlanPayload struct {
	StepRef
}

// NewTransformPlanTask starts a job step.
func NewTransformPlanTask(p TransformPlanPayload, o Options) (*asynq.Task, error) {
	return newTask(TypeTransformPlan, p, o.asynq(QueueTransform, PlanID(p.StepRef))...)
}

// TransformMapPayload is the payload of TypeTransformMap. The shard's object
// list lives in the plan in the job's scratch location, not in the task, so
// large shards do not bloat Redis.
type TransformMapPayload struct {
	StepRef
	Shard  int `json:"shard"`
	Shards int `json:"shards"`
}

// NewTransformMapTask processes one shard.
func NewTransformMapTask(p TransformMapPayload, o Options) (*asynq.Task, error) {
	return newTask(TypeTransformMap, p, o.asynq(QueueTransform, MapID(p.StepRef, p.Shard))...)
}

// TransformSplitPayload is the payload of TypeTransformSplit.
type TransformSplitPayload struct {
	StepRef
	Shards int `json:"shards"`
}

// NewTransformSplitTask splits the mapped dates into files.
func NewTransformSplitTask(p TransformSplitPayload, o Options) (*asynq.Task, error) {
	return newTask(TypeTransformSplit, p, o.asynq(QueueTransform, SplitID(p.StepRef))...)
}

// TransformReducePayload is the payload of TypeTransformReduce.
type TransformReducePayload struct {
	StepRef
	Date  string `json:"date"`  // YYYY-MM-DD: the output partition
	Slice int    `json:"slice"` // the slice of the date's virtual buckets
}

// NewTransformReduceTask reduces one slice of an output partition.
func NewTransformReduceTask(p TransformReducePayload, o Options) (*asynq.Task, error) {
	return newTask(TypeTransformReduce, p, o.asynq(QueueTransform, ReduceID(p.StepRef, p.Date, p.Slice))...)
}

// TransformEncodePayload is the payload of TypeTransformEncode.
type TransformEncodePayload struct {
	StepRef
	Date      string `json:"date"`     // YYYY-MM-DD: the output partition
	Fragment  int    `json:"fragment"` // 0 .. Fragments-1
	Fragments int    `json:"fragments"`
}

// NewTransformEncodeTask writes one fragment of an output partition.
func NewTransformEncodeTask(p TransformEncodePayload, o Options) (*asynq.Task, error) {
	return newTask(TypeTransformEncode, p, o.asynq(QueueTransform, EncodeID(p.StepRef, p.Date, p.Fragment))...)
}

// TransformCommitPayload is the payload of TypeTransformCommit.
type TransformCommitPayload struct {
	StepRef
	Date  string `json:"date"`  // YYYY-MM-DD: the output partition
	Dates int    `json:"dates"` // partitions the step commits, for the barrier
}

// NewTransformCommitTask publishes one output partition.
func NewTransformCommitTask(p TransformCommitPayload, o Options) (*asynq.Task, error) {
	return newTask(TypeTransformCommit, p, o.asynq(QueueTransform, CommitID(p.StepRef, p.Date))...)
}

func newTask(typ string, payload any, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return asynq.NewTask(typ, b, opts...), nil
}

// Decode reads a payload; a payload that does not decode can never succeed,
// so the error is permanent (pipeline/fault).
func Decode[P any](t *asynq.Task) (P, error) {
	var p P
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return p, fault.Permanent(fmt.Errorf("decode %s payload: %w", t.Type(), err))
	}
	return p, nil
}

// Enqueue puts t on its queue. It reports false, and no error, when a task
// with the same TaskID already exists (pending, running, retained or
// archived): that work was already enqueued.
func Enqueue(ctx context.Context, c *asynq.Client, t *asynq.Task) (bool, error) {
	_, err := c.EnqueueContext(ctx, t)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("enqueue %s: %w", t.Type(), err)
	}
	return true, nil
}

// ForStep builds the task that starts a crawler or job step.
func ForStep(kind workflow.StepKind, ref StepRef, o Options) (*asynq.Task, error) {
	switch kind {
	case workflow.KindCrawler:
		return NewCrawlRunTask(CrawlRunPayload{ref}, o)
	case workflow.KindJob:
		return NewTransformPlanTask(TransformPlanPayload{ref}, o)
	}
	return nil, fmt.Errorf("step %s: no task for a %s", ref, kind)
}
