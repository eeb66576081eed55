package crawl

import (
	"context"
	"slices"
	"strings"
	"testing"

	"sluice/pipeline/catalog"
)

// TestDrift crawls real gzip files in a folder, day by day, with the
// drift raw Segment data has: a field that is a number in some files and a
// string in others, keys with dots and spaces, an empty file and an empty
// gzip stream, a folder holding no JSON at all, arrays, and a new column on
// a later day.
func TestDrift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := newFileBucket(t)
	putF := func(key string, body []byte) {
		t.Helper()
		if err := raw.Put(ctx, key, strings.NewReader(string(body))); err != nil {
			t.Fatal(err)
		}
	}
	const day1, day2, day3, day4 = "events/1709942400000/", "events/1710028800000/", "events/1710115200000/", "events/1710201600000/"
	putF(day1+"a.gz", gz(`{"id":1,"userId":"u1","context.ip":"1.2.3.4","Product Name":"Tea","tags":["a","b"],"items":[{"sku":1}],"nested":{"Screen Size":5}}`+"\n"))
	putF(day1+"b.gz", gz(`{"id":2,"userId":"u2","tags":[],"items":[{"sku":2,"qty":3}]}`+"\n"))
	putF(day2+"a.gz", gz(`{"id":"x-3","userId":"u3","tags":["c"]}`+"\n"))
	putF(day2+"empty.gz", nil)
	putF(day2+"empty-stream.gz", gz(""))
	putF(day3+"logo.png", []byte("\x89PNG\r\n"))
	putF(day3+"README.txt", []byte("not data"))

	store := catalog.New(newFileBucket(t))
	target := Target{Database: "lake", TableName: "events", Path: "events/", Location: "s3://raw/events/"}
	res, err := Crawl(ctx, raw, target, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := store.GetTable(ctx, "lake", "events")
	var cols []string
	for _, c := range tb.Columns {
		cols = append(cols, c.Name+" "+c.Type.String())
	}
	want := []string{
		"id string", // int in day 1, string in day 2
		"userId string",
		"context.ip string",
		"Product Name string",
		"tags array<string>",
		"items array<struct<sku:int,qty:int>>",
		"nested struct<`Screen Size`:int>",
	}
	if !slices.Equal(cols, want) {
		t.Errorf("columns\n%v\nwant\n%v", cols, want)
	}
	i := slices.IndexFunc(res.Conflicts, func(c catalog.Conflict) bool { return c.Path == "id" })
	if i < 0 || res.Conflicts[i].Resolved != "string" || res.Conflicts[i].Widened || !strings.HasPrefix(res.Conflicts[i].Key, day2) {
		t.Errorf("id conflict not recorded with where it was seen: %+v", res.Conflicts)
	}
	skipped := map[string]string{}
	for _, s := range res.AllSkipped() {
		skipped[s.Key] = s.Reason
	}
	if skipped[day3+"logo.png"] != "unknown format" || skipped[day3+"README.txt"] != "unknown format" || len(skipped) != 2 {
		t.Errorf("skipped %v (empty files are not errors, non-JSON files are)", skipped)
	}

	parts, _ := store.ListPartitions(ctx, "lake", "events")
	if len(parts) != 2 {
		t.Errorf("the folder of non-JSON files became a partition: %+v", parts)
	}

	// The DDL of the drifted table is what Athena can read.
	ddl, err := catalog.CreateTableDDL(tb, nil, catalog.DDLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"`context_ip` string", "`product_name` string", "'mapping.context_ip'='context.ip'", "'mapping.product_name'='Product Name'", "`nested` struct<`Screen Size`:int>", "`userid` string"} {
		if !strings.Contains(ddl, w) {
			t.Errorf("DDL lacks %s:\n%s", w, ddl)
		}
	}

	// A new column on a later day is appended at the end.
	putF(day4+"a.gz", gz(`{"id":"x-4","userId":"u4","plan":"pro"}`+"\n"))
	res, err = Crawl(ctx, raw, target, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tb2, _ := store.GetTable(ctx, "lake", "events")
	if !slices.Equal(res.ColumnsAdded, []string{"plan"}) || tb2.Columns[len(tb2.Columns)-1].Name != "plan" || tb2.Version != tb.Version+1 || res.FoldersSampled != 1 {
		t.Errorf("later day: %+v, version %d -> %d", res, tb.Version, tb2.Version)
	}
}

func TestCSVHeaderSniffing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := newFileBucket(t)
	for key, body := range map[string]string{
		"with/year=2024/a.csv":    "id,Name,price\n1,Tea,2.5\n2,\"Cake, large\",4\n",
		"without/year=2024/a.csv": "1,Tea,2.5\n2,Cake,4\n",
		"strings/year=2024/a.csv": "city,country\nParis,France\n",
	} {
		if err := raw.Put(ctx, key, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	store := catalog.New(newFileBucket(t))
	for name, want := range map[string]string{
		"with":    "id int,name string,price double|1",
		"without": "col_0 int,col_1 string,col_2 double|",
		"strings": "city string,country string|1",
	} {
		if _, err := Crawl(ctx, raw, Target{Database: "lake", Path: name + "/", Location: "s3://b/" + name + "/"}, store, Options{}, quiet()); err != nil {
			t.Fatal(err)
		}
		tb, _ := store.GetTable(ctx, "lake", name)
		var cols []string
		for _, c := range tb.Columns {
			cols = append(cols, c.Name+" "+c.Type.String())
		}
		if got := strings.Join(cols, ",") + "|" + tb.Properties["skip.header.line.count"]; got != want || tb.Format != "csv" {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

func TestBytesSampledCounted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := newFileBucket(t)
	body := gz(`{"id":1}` + "\n")
	if err := raw.Put(ctx, "e/1709942400000/a.gz", strings.NewReader(string(body))); err != nil {
		t.Fatal(err)
	}
	res, err := Crawl(ctx, raw, Target{Database: "lake", Path: "e/", Location: "s3://b/e/"}, catalog.New(newFileBucket(t)), Options{}, quiet())
	if err != nil || res.BytesSampled != int64(len(body)) {
		t.Errorf("bytes_sampled %d, want %d (%v)", res.BytesSampled, len(body), err)
	}
}
