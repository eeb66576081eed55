package crawl

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"sluice/pipeline/catalog"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
)

// countingReader wraps a real bucket and records every object read.
type countingBucket struct {
	storage.Reader
	mu   sync.Mutex
	gets []string
}

// Get records the data files read. The one small read of the table's
// declared schema (which a raw folder does not have) is not counted: it is
// the same for every crawl that updates the table.
func (c *countingBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.mu.Lock()
	if !strings.HasSuffix(key, "_sluice/schema/current.json") {
		c.gets = append(c.gets, key)
	}
	c.mu.Unlock()
	return c.Reader.Get(ctx, key)
}

func (c *countingBucket) reset() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gets
	c.gets = nil
	slices.Sort(g)
	return g
}

func newFileBucket(t *testing.T) *filestore.Bucket {
	t.Helper()
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIncrementalCrawlReadsOnlyNewFolder generates real gzip Segment logs in
// a folder, crawls, adds one more received-day folder and crawls again: the
// second crawl must read objects of that folder only.
func TestIncrementalCrawlReadsOnlyNewFolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := newFileBucket(t)
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 200
	cfg.Sources = cfg.Sources[:1]
	cfg.LateRate = 0 // so the newest folder is a whole day
	sum, err := segmentgen.Generate(ctx, raw, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Hold the newest day folder back.
	last := sum.Folders[len(sum.Folders)-1]
	held := filepath.Join(t.TempDir(), "held")
	if err := os.Rename(filepath.Join(raw.Root(), filepath.FromSlash(last.Prefix)), held); err != nil {
		t.Fatal(err)
	}
	src := &countingBucket{Reader: raw}
	store := catalog.New(newFileBucket(t))
	target := Target{Database: "segmentlogs", TableName: "ios", Path: "segment-logs/ios/", Location: "s3://raw/segment-logs/ios/"}

	res1, err := Crawl(ctx, src, target, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	first := src.reset()
	if res1.PartitionsAdded != len(sum.Folders)-1 || res1.FoldersSampled != len(sum.Folders)-1 || len(first) == 0 {
		t.Fatalf("first crawl: %+v, %d reads", res1, len(first))
	}

	// Nothing new: nothing read, nothing written.
	res2, err := Crawl(ctx, src, target, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if got := src.reset(); len(got) != 0 || res2.FoldersSampled != 0 || len(res2.Tables) != 0 || res2.PartitionsAdded != 0 {
		t.Fatalf("crawl with nothing new read %v, result %+v", got, res2)
	}

	// One new day folder: only its objects are read.
	if err := os.Rename(held, filepath.Join(raw.Root(), filepath.FromSlash(last.Prefix))); err != nil {
		t.Fatal(err)
	}
	res3, err := Crawl(ctx, src, target, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	got := src.reset()
	if len(got) == 0 {
		t.Fatal("new folder not read")
	}
	for _, k := range got {
		if !strings.HasPrefix(k, last.Prefix) {
			t.Errorf("incremental crawl read %s, outside the new folder %s", k, last.Prefix)
		}
	}
	if res3.PartitionsAdded != 1 || res3.FoldersSampled != 1 || res3.PartitionsSeen != len(sum.Folders) {
		t.Errorf("incremental result %+v", res3)
	}
	t.Logf("first crawl read %d objects, incremental %d (%v)", len(first), len(got), got)

	// A late file in an already crawled folder changes its fingerprint: that
	// folder alone is read again and its partition updated.
	mid := sum.Folders[0]
	late := mid.Prefix + "9999999999999.late.gz"
	if err := raw.Put(ctx, late, strings.NewReader(string(gz(`{"messageId":"late","lateField":1}`+"\n")))); err != nil {
		t.Fatal(err)
	}
	res4, err := Crawl(ctx, src, target, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range src.reset() {
		if !strings.HasPrefix(k, mid.Prefix) {
			t.Errorf("late-file crawl read %s, outside %s", k, mid.Prefix)
		}
	}
	if res4.PartitionsUpdated != 1 || res4.PartitionsAdded != 0 || !slices.Contains(res4.ColumnsAdded, "lateField") {
		t.Errorf("late-file result %+v", res4)
	}

	// A full recrawl reads every folder again.
	res5, err := Crawl(ctx, src, target, store, Options{Recrawl: RecrawlEverything}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if res5.FoldersSampled != len(sum.Folders) || len(src.reset()) < len(first) {
		t.Errorf("full recrawl sampled %d folders", res5.FoldersSampled)
	}

	// Every object gone (a table emptied on purpose): the crawl succeeds,
	// keeps the table and marks every partition missing.
	for _, k := range listAll(t, raw) {
		if err := raw.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	res6, err := Crawl(ctx, src, target, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	parts, err := store.ListPartitions(ctx, "segmentlogs", "ios")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if !p.Missing {
			t.Errorf("partition %v not missing after its folder was emptied", p.Values)
		}
	}
	if res6.PartitionsGone != len(sum.Folders) || res6.TableVersion != res5.TableVersion {
		t.Errorf("emptied target: %+v", res6)
	}
	// It succeeds, but says the target looks wrong.
	if !strings.Contains(res6.Warning, "holds no data files") || !strings.Contains(res6.Warning, "check the crawler's location") {
		t.Errorf("emptied target: warning %q", res6.Warning)
	}
	// An empty target of a table never crawled is an error.
	if _, err := Crawl(ctx, src, Target{Database: "segmentlogs", TableName: "new", Path: "segment-logs/ios/"}, store, Options{}, quiet()); !errors.Is(err, ErrNoData) {
		t.Errorf("first crawl of an empty target: %v, want ErrNoData", err)
	}
}

func listAll(t *testing.T, b storage.Reader) []string {
	t.Helper()
	keys, err := storage.ListKeys(context.Background(), b, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestSchemaChangePolicy: a new column on a later day under each policy.
func TestSchemaChangePolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, policy := range []string{SchemaUpdate, SchemaLog, SchemaFail} {
		t.Run(policy, func(t *testing.T) {
			raw := newFileBucket(t)
			store := catalog.New(newFileBucket(t))
			target := Target{Database: "lake", TableName: "events", Path: "events/", Location: "s3://b/events/"}
			opts := Options{SchemaChange: policy}
			putF := func(key, body string) {
				if err := raw.Put(ctx, key, strings.NewReader(body)); err != nil {
					t.Fatal(err)
				}
			}
			putF("events/1709942400000/a.gz", string(gz(`{"id":1,"name":"x"}`+"\n")))
			if _, err := Crawl(ctx, raw, target, store, opts, quiet()); err != nil {
				t.Fatal(err)
			}
			putF("events/1710028800000/b.gz", string(gz(`{"id":2.5,"name":"y","extra":true}`+"\n")))
			res, err := Crawl(ctx, raw, target, store, opts, quiet())
			tb, _ := store.GetTable(ctx, "lake", "events")
			parts, _ := store.ListPartitions(ctx, "lake", "events")
			var names []string
			for _, c := range tb.Columns {
				names = append(names, c.Name+" "+c.Type.String())
			}
			switch policy {
			case SchemaUpdate:
				if err != nil || !slices.Equal(names, []string{"id double", "name string", "extra boolean"}) || tb.Version != 2 {
					t.Errorf("update: %v, columns %v, version %d", err, names, tb.Version)
				}
				if !slices.Equal(res.ColumnsAdded, []string{"extra"}) || !slices.Equal(res.ColumnsChanged, []string{"id: int -> double"}) {
					t.Errorf("update result %+v", res)
				}
				if len(parts) != 2 {
					t.Errorf("partitions %v", parts)
				}
			case SchemaLog:
				if err != nil || !slices.Equal(names, []string{"id int", "name string"}) || tb.Version != 1 {
					t.Errorf("log: %v, columns %v, version %d", err, names, tb.Version)
				}
				if len(res.SchemaChangesLogged) != 2 || len(res.ColumnsAdded) != 0 || len(parts) != 2 {
					t.Errorf("log result %+v, %d partitions", res, len(parts))
				}
			case SchemaFail:
				if !errors.Is(err, ErrSchemaChange) || !strings.Contains(err.Error(), "extra") {
					t.Errorf("fail: err %v", err)
				}
				if !slices.Equal(names, []string{"id int", "name string"}) || tb.Version != 1 || len(parts) != 1 {
					t.Errorf("fail wrote something: columns %v, version %d, %d partitions", names, tb.Version, len(parts))
				}
				// The next crawl sees the change again: nothing was recorded.
				if _, err := Crawl(ctx, raw, target, store, opts, quiet()); !errors.Is(err, ErrSchemaChange) {
					t.Errorf("second fail crawl: %v", err)
				}
			}
		})
	}
}
