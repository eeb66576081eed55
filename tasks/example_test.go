package tasks_test

import (
	"fmt"
	"log"

	"sluice/tasks"
)

// The scheduler and the workers agree on a task by its type and payload
// alone; the worker decodes what the scheduler built.
func ExampleNewTransformReduceTask() {
	ref := tasks.StepRef{Workflow: "mobile-user", RunID: "run-1", Step: "mobile-user-daily"}
	t, err := tasks.NewTransformReduceTask(tasks.TransformReducePayload{StepRef: ref, Date: "2026-11-01", Bucket: 2, Buckets: 4}, tasks.DefaultOptions)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Type())
	fmt.Println(string(t.Payload()))

	p, err := tasks.Decode[tasks.TransformReducePayload](t)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Step, p.Date, p.Bucket, "of", p.Buckets)
	// Output:
	// transform:reduce
	// {"workflow":"mobile-user","run_id":"run-1","step":"mobile-user-daily","date":"2026-11-01","bucket":2,"buckets":4}
	// mobile-user-daily 2026-11-01 2 of 4
}
