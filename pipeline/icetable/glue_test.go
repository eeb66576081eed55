package icetable_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"sluice/internal/testenv"
	"sluice/internal/testenv/gluetest"
	"sluice/pipeline/icetable"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/workflow"
)

// onGlue is a table named events in the Glue stand-in's database sluice,
// its data and metadata on S3 (versitygw), as Athena would find it.
type onGlue struct {
	glue    *gluetest.Server
	bucket  storage.Bucket
	ioProps map[string]string
	catalog icetable.CatalogConfig
}

func startOnGlue(t *testing.T) onGlue {
	t.Helper()
	g := gluetest.Start(t)
	srv := testenv.StartS3(t)
	opts := s3store.Options{Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	b, err := s3store.New(t.Context(), srv.NewBucket(t), "tables/events", opts)
	if err != nil {
		t.Fatal(err)
	}
	// The table block as a workflow says it (docs/ICEBERG.md), with the
	// endpoint and keys of the stand-in.
	block := fmt.Sprintf(`
format: iceberg
name: events
catalog:
  type: glue
  properties:
    glue.endpoint: %s
    glue.region: %s
    glue.access-key-id: %s
    glue.secret-access-key: %s
`, g.URL, g.Region, g.AccessKey, g.SecretKey)
	var spec workflow.TableSpec
	if err := yaml.Unmarshal([]byte(block), &spec); err != nil {
		t.Fatal(err)
	}
	cfg := icetable.ConfigOf(&spec)
	if cfg.Catalog.Type != icetable.CatalogGlue {
		t.Fatalf("catalog %+v", cfg.Catalog)
	}
	return onGlue{glue: g, bucket: b, ioProps: icetable.IOProperties(opts), catalog: cfg.Catalog}
}

func (o onGlue) open(t *testing.T) *icetable.Table {
	t.Helper()
	tb, err := icetable.Open(icetable.Config{Name: "events", Catalog: o.catalog}, o.bucket, o.ioProps)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// checkAthenaEntry checks the Glue entry as Athena reads an Iceberg table
// from it, in every version the table had: table_type ICEBERG, a
// metadata_location that is a metadata file in the bucket, and a
// previous_metadata_location that is the version before's (so each
// version's metadata_location was the current one when it was written).
// The last version's file holds the table's current snapshot.
func checkAthenaEntry(t *testing.T, o onGlue, tb *icetable.Table) {
	t.Helper()
	history := o.glue.History("sluice", "events")
	if len(history) < 2 {
		t.Fatalf("%d versions of the Glue table", len(history))
	}
	for i, params := range history {
		if !strings.EqualFold(params["table_type"], "ICEBERG") {
			t.Errorf("version %d: table_type %q", i, params["table_type"])
		}
		key, ok := strings.CutPrefix(params["metadata_location"], tb.Location()+"/metadata/")
		if !ok || !strings.HasSuffix(key, ".metadata.json") {
			t.Errorf("version %d: metadata_location %q is not a metadata file of %s", i, params["metadata_location"], tb.Location())
			continue
		}
		if _, err := o.bucket.Stat(t.Context(), "metadata/"+key); err != nil {
			t.Errorf("version %d: metadata_location %s: %v", i, key, err)
		}
		switch prev := params["previous_metadata_location"]; {
		case i == 0 && prev != "":
			t.Errorf("the created table has a previous_metadata_location %q", prev)
		case i > 0 && prev != history[i-1]["metadata_location"]:
			t.Errorf("version %d: previous_metadata_location %q, want the version before's %q", i, prev, history[i-1]["metadata_location"])
		}
	}
	entry := o.glue.Table("sluice", "events")
	sd, _ := entry["StorageDescriptor"].(map[string]any)
	if entry["TableType"] != "EXTERNAL_TABLE" || sd["Location"] != tb.Location() {
		t.Errorf("Glue table type %v, location %v; want EXTERNAL_TABLE at %s", entry["TableType"], sd["Location"], tb.Location())
	}
	last := history[len(history)-1]["metadata_location"]
	tbl, err := tb.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tbl.CurrentSnapshot() == nil {
		t.Fatal("the table has no current snapshot")
	}
	if got, want := currentSnapshotOf(t, o.bucket, strings.TrimPrefix(last, tb.Location()+"/")), tbl.CurrentSnapshot().SnapshotID; got != want {
		t.Errorf("the metadata file Glue names has current snapshot %d, the table %d", got, want)
	}
}

// currentSnapshotOf reads a metadata file's current-snapshot-id.
func currentSnapshotOf(t *testing.T, b storage.Bucket, key string) int64 {
	t.Helper()
	rc, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var md struct {
		Current int64 `json:"current-snapshot-id"`
	}
	if err := json.NewDecoder(rc).Decode(&md); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return md.Current
}

// The table's whole life through iceberg-go's Glue catalog, signed
// requests to the Glue stand-in, data and metadata on S3; then the entry
// Athena reads.
func TestTableOnGlueCatalog(t *testing.T) {
	o := startOnGlue(t)
	exerciseWith(t, o.bucket, o.ioProps, o.catalog)
	checkAthenaEntry(t, o, o.open(t))
	if _, err := o.bucket.Stat(t.Context(), icetable.CatalogKey); err == nil {
		t.Error("a Glue catalog's table has an embedded catalog file")
	}
}

// publication writes one file of date for run and describes it.
func publication(t *testing.T, tb *icetable.Table, b storage.Bucket, run, date string) icetable.Publication {
	t.Helper()
	ids, err := tb.EnsureColumns(t.Context(), cols)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("data/date=%s/part-00000-%s.parquet", date, run)
	return icetable.Publication{RunID: run, Step: "job", Columns: cols, Dates: []string{date},
		Files: []icetable.DataFile{writeFile(t, b, ids, key, date, rowsOf(date, 4, run))}}
}

// A writer whose UpdateTable names a VersionId another writer has just
// replaced loses Glue's optimistic lock (ConcurrentModificationException):
// Publish loads the table that writer left and lands its run once.
func TestGlueCatalogLostCommitRace(t *testing.T) {
	o := startOnGlue(t)
	a, b := o.open(t), o.open(t)
	first := publication(t, a, o.bucket, "run-first", "2026-10-01")
	if _, err := a.Publish(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	pubA := publication(t, a, o.bucket, "run-a", "2026-10-02")
	pubB := publication(t, b, o.bucket, "run-b", "2026-10-03")

	var resB icetable.Result
	var errB error
	o.glue.BeforeNext("UpdateTable", func() { resB, errB = b.Publish(t.Context(), pubB) })
	o.glue.ResetCalls()
	resA, err := a.Publish(t.Context(), pubA)
	if err != nil || errB != nil {
		t.Fatalf("a: %v; b: %v", err, errB)
	}
	if !resA.Landed || resA.Attempts != 2 || !resB.Landed || resB.Attempts != 1 {
		t.Fatalf("a %+v, b %+v: want both landed, a on its second attempt", resA, resB)
	}
	if n := count(o.glue.Calls(), "UpdateTable"); n != 3 {
		t.Errorf("%d UpdateTable calls, want 3 (b's, a's refused, a's again): %v", n, o.glue.Calls())
	}
	snaps, err := a.Snapshots(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, s := range snaps {
		runs = append(runs, s.RunID)
	}
	if want := []string{"run-first", "run-b", "run-a"}; !slices.Equal(runs, want) {
		t.Errorf("snapshots of runs %v, want %v", runs, want)
	}
	if got := scan(t, a, 0); len(got) != 12 {
		t.Errorf("%d rows, want 12 (4 of each run)", len(got))
	}
	checkAthenaEntry(t, o, a)
}

// A writer that loads the table, and then finds on committing that
// another writer committed in between (iceberg-go's Glue catalog reads
// the table again in CommitTable and checks the commit's requirements on
// it, before any UpdateTable), loses the race too: Publish loads the
// table again and lands its run once.
func TestGlueCatalogStaleLoadRace(t *testing.T) {
	o := startOnGlue(t)
	a, b := o.open(t), o.open(t)
	if _, err := a.Publish(t.Context(), publication(t, a, o.bucket, "run-first", "2026-10-01")); err != nil {
		t.Fatal(err)
	}
	pubA := publication(t, a, o.bucket, "run-a", "2026-10-02")
	pubB := publication(t, b, o.bucket, "run-b", "2026-10-03")

	// a's Publish reads the table once to load it and once in
	// CommitTable: b commits between the two.
	var resB icetable.Result
	var errB error
	o.glue.BeforeNext("GetTable", func() {
		o.glue.BeforeNext("GetTable", func() { resB, errB = b.Publish(t.Context(), pubB) })
	})
	o.glue.ResetCalls()
	resA, err := a.Publish(t.Context(), pubA)
	if err != nil || errB != nil {
		t.Fatalf("a: %v; b: %v", err, errB)
	}
	if !resA.Landed || resA.Attempts != 2 || !resB.Landed || resB.Attempts != 1 {
		t.Fatalf("a %+v, b %+v: want both landed, a on its second attempt", resA, resB)
	}
	if n := count(o.glue.Calls(), "UpdateTable"); n != 2 {
		t.Errorf("%d UpdateTable calls, want 2 (b's, a's second attempt's): %v", n, o.glue.Calls())
	}
	if got := scan(t, a, 0); len(got) != 12 {
		t.Errorf("%d rows, want 12 (4 of each run)", len(got))
	}
	checkAthenaEntry(t, o, a)
}

// Two writers that both find no table both create it; Glue lets one
// CreateTable through (AlreadyExistsException for the other) and the
// loser goes on with the winner's table.
func TestGlueCatalogLostCreateRace(t *testing.T) {
	o := startOnGlue(t)
	a, b := o.open(t), o.open(t)
	var errB error
	o.glue.BeforeNext("CreateTable", func() { _, errB = b.EnsureColumns(t.Context(), cols) })
	ids, err := a.EnsureColumns(t.Context(), cols)
	if err != nil || errB != nil {
		t.Fatalf("a: %v; b: %v", err, errB)
	}
	if ids["event"] == 0 || ids["n"] == 0 {
		t.Errorf("field ids %v", ids)
	}
	if n := count(o.glue.Calls(), "CreateTable"); n != 2 {
		t.Errorf("%d CreateTable calls, want 2 (b's, a's refused): %v", n, o.glue.Calls())
	}
	if _, err := a.Publish(t.Context(), publication(t, a, o.bucket, "run-a", "2026-10-02")); err != nil {
		t.Fatal(err)
	}
}

func count(calls []string, op string) int {
	n := 0
	for _, c := range calls {
		if c == op {
			n++
		}
	}
	return n
}
