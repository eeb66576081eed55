package tasks

import (
	"context"
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
	info, err := asynq.NewInspector(opt).GetTaskInfo(QueueTransform, "run-1/job/map/00007")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Decode[TransformMapPayload](asynq.NewTask(info.Type, info.Payload))
	if err != nil || p.Shard != 7 || p.RunID != "run-1" {
		t.Fatalf("payload %+v err %v", p, err)
	}
	if _, err := Decode[TransformMapPayload](asynq.NewTask(TypeTransformMap, []byte("{"))); !fault.IsPermanent(err) {
		t.Fatalf("bad payload: %v, want a permanent error", err)
	}
}
