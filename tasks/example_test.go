package tasks_test

import (
	"fmt"
	"log"

	"sluice/tasks"
)

// The scheduler and the workers agree on a task by its type and payload
// alone; the worker decodes what the scheduler built.
func ExampleNewTransformEncodeTask() {
	ref := tasks.StepRef{Workflow: "mobile-user", RunID: "run-1", Step: "mobile-user-daily"}
	t, err := tasks.NewTransformEncodeTask(tasks.TransformEncodePayload{StepRef: ref, Date: "2026-11-01", Fragment: 2, Fragments: 4}, tasks.DefaultOptions)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Type())
	fmt.Println(string(t.Payload()))

	p, err := tasks.Decode[tasks.TransformEncodePayload](t)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Step, p.Date, p.Fragment, "of", p.Fragments)
	// Output:
	// transform:encode
	// {"workflow":"mobile-user","run_id":"run-1","step":"mobile-user-daily","date":"2026-11-01","fragment":2,"fragments":4}
	// mobile-user-daily 2026-11-01 2 of 4
}
