package mapper_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"sluice/pipeline/civil"
	"sluice/pipeline/mapper"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
	"sluice/pipeline/transform/transformtest"
)

// One shard of one object: rows are placed by their Pacific date, the
// event outside the window is counted and the bad line quarantined; the
// manifest written last is what the job's split phase reads.
func ExampleMapShard() {
	ctx := context.Background()
	raw, scratch := memstore.New(), memstore.New()
	key := transformtest.DayFolder("ios", "2026-11-02") + "part-0.gz"
	body := transformtest.Gzip(
		transformtest.Event("m1", "2026-11-02T00:30:00Z"), // 2026-11-01 in Pacific time
		transformtest.Event("m2", "2026-11-02T18:00:00Z"),
		transformtest.Event("m3", "2026-11-09T18:00:00Z"), // after the window
		`not json`,
	)
	if err := raw.Put(ctx, key, bytes.NewReader(body)); err != nil {
		log.Fatal(err)
	}
	start, _ := civil.Parse("2026-11-01")
	end, _ := civil.Parse("2026-11-02")
	shard := transform.Shard{Index: 0, Objects: []transform.Object{{Source: "ios", Key: key, Size: int64(len(body))}}}
	man, err := mapper.MapShard(ctx, raw, scratch, "shards/00000/", transform.DefaultSpec(), civil.Window{Start: start, End: end}, shard, mapper.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range man.Dates {
		fmt.Println(d.Date, d.Rows, "rows in", d.RowsFile)
	}
	fmt.Println("outside the window:", man.Stats.OutsideWindow, "quarantined:", man.Stats.Quarantined)
	// Output:
	// 2026-11-01 1 rows in date=2026-11-01.rows
	// 2026-11-02 1 rows in date=2026-11-02.rows
	// outside the window: 1 quarantined: map[invalid_json:1]
}
