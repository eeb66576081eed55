package mapper

import (
	"context"
	"fmt"
	"testing"

	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

// MapShard reports each object's event dates, inside the window or not, for
// the bookmarks; bad lines add none.
func TestMapShardReportsObjectDates(t *testing.T) {
	t.Parallel()
	in, scratch := memstore.New(), memstore.New()
	late := dayFolder("ios", "2026-11-03") + "late.gz"
	put(t, in, late, gz(ev("a", "2026-10-30T12:00:00Z"), ev("b", "2026-11-03T01:00:00Z"), ev("c", "2026-10-20T12:00:00Z"), "not json"))
	empty := dayFolder("ios", "2026-11-03") + "empty.gz"
	put(t, in, empty, gz("{}"))
	w := window(t, "2026-10-30", "2026-10-31")
	shard := transform.Shard{Objects: []transform.Object{{Source: "ios", Key: empty}, {Source: "ios", Key: late}}}
	man, err := MapShard(context.Background(), in, scratch, "shard", testSpec(), w, shard, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := man.Stats
	// 2026-11-03T01:00Z is the evening of 11-02 in Los Angeles.
	if got := fmt.Sprint(st.ObjectDates[late]); got != "[2026-10-20 2026-10-30 2026-11-02]" {
		t.Errorf("dates of %s: %s", late, got)
	}
	if _, ok := st.ObjectDates[empty]; ok {
		t.Errorf("an object without valid events has dates: %v", st.ObjectDates[empty])
	}
}
