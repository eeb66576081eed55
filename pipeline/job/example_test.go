package job_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/job"
	"sluice/pipeline/job/jobtest"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
	"sluice/pipeline/transform/transformtest"
)

// A job step over one received-day folder: the duplicate delivery is
// dropped, the line that is not JSON is quarantined, and the partition is
// named by the Pacific date (00:30 UTC on the 2nd is still the 1st there).
func ExampleStep() {
	ctx := context.Background()
	raw, out, scratch := memstore.New(), memstore.New(), memstore.New()
	folder := transformtest.DayFolder("ios", "2026-11-02")
	object := transformtest.Gzip(
		transformtest.Event("m1", "2026-11-02T00:30:00Z"),
		transformtest.Event("m1", "2026-11-02T00:30:00Z"), // delivered twice
		transformtest.Event("m2", "2026-11-02T18:00:00Z"),
		`{"messageId": truncated`,
	)
	if err := raw.Put(ctx, folder+"part-0.gz", bytes.NewReader(object)); err != nil {
		log.Fatal(err)
	}
	start, _ := civil.Parse("2026-11-01")
	end, _ := civil.Parse("2026-11-02")
	step := &job.Step{
		RunID: "run-1", Name: "daily", Spec: transform.DefaultSpec(), SpecID: "example",
		Window: civil.Window{Start: start, End: end},
		In:     raw, Out: out, Scratch: scratch,
		Bookmarks: bookmark.NewStore(out, "daily"),
	}
	sum, err := jobtest.Run(ctx, step)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rows:", sum.RowsWritten, "duplicates:", sum.Duplicates, "quarantined:", sum.Quarantined)
	fmt.Println("partitions:", sum.Partitions)
	// Output:
	// rows: 2 duplicates: 1 quarantined: map[invalid_json:1]
	// partitions: map[2026-11-01:1 2026-11-02:1]
}
