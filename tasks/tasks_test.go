package tasks

import (
	"context"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"sluice/internal/testenv"
	"sluice/pipeline/fault"
)

func TestTaskIDsAreDeterministicAndEnqueueIsIdempotent(t *testing.T) {
	t.Parallel()
	opt, err := asynq.ParseRedisURI(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	ctx := context.Background()
	ref := StepRef{Workflow: "wf", RunID: "run-1", Step: "job"}
	a, _ := NewTransformMapTask(TransformMapPayload{StepRef: ref, Shard: 7, Shards: 9}, DefaultOptions)
	b, _ := NewTransformMapTask(TransformMapPayload{StepRef: ref, Shard: 7, Shards: 9}, DefaultOptions)
	other, _ := NewTransformMapTask(TransformMapPayload{StepRef: ref, Shard: 8, Shards: 9}, DefaultOptions)
	for i, c := range []struct {
		task *asynq.Task
		want bool
	}{{a, true}, {b, false}, {other, true}} {
		got, err := Enqueue(ctx, client, c.task)
		if err != nil || got != c.want {
			t.Fatalf("enqueue %d: enqueued %v err %v, want %v", i, got, err, c.want)
		}
	}
	info, err := asynq.NewInspector(opt).GetTaskInfo(QueueTransform, "run_1:job:map:00007")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Decode[TransformMapPayload](asynq.NewTask(info.Type, info.Payload))
	if err != nil || p.Shard != 7 || p.RunID != "run-1" {
		t.Fatalf("payload %+v err %v", p, err)
	}
	// asynqmon's routes and ID column take ids without '/' and '-'.
	red, _ := NewTransformReduceTask(TransformReducePayload{StepRef: ref, Date: "2026-10-31", Slice: 3}, DefaultOptions)
	if id := ReduceID(ref, "2026-10-31", 3); id != "run_1:job:reduce:20261031:00003" || strings.ContainsAny(id, "/-") {
		t.Errorf("reduce id %q", id)
	}
	if _, err := Enqueue(ctx, client, red); err != nil {
		t.Fatal(err)
	}
	enc, _ := NewTransformEncodeTask(TransformEncodePayload{StepRef: ref, Date: "2026-10-31", Fragment: 12, Fragments: 20}, DefaultOptions)
	if id := EncodeID(ref, "2026-10-31", 12); id != "run_1:job:encode:20261031:00012" || enc.Type() != TypeTransformEncode {
		t.Errorf("encode id %q", id)
	}
	if _, err := Enqueue(ctx, client, enc); err != nil {
		t.Fatal(err)
	}
	if err := CheckIDs([]string{"a-b", "a.b", "c"}); err != nil {
		t.Error(err)
	}
	if err := CheckIDs([]string{"a-b", "a_b"}); err == nil {
		t.Error("a-b and a_b accepted")
	}
	if _, err := Decode[TransformMapPayload](asynq.NewTask(TypeTransformMap, []byte("{"))); !fault.IsPermanent(err) {
		t.Fatalf("bad payload: %v, want a permanent error", err)
	}
}
