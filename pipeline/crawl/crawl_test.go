package crawl

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"

	"sluice/pipeline/catalog"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage/memstore"
)

func put(t *testing.T, b *memstore.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(context.Background(), key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func gz(s string) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write([]byte(s)) // a bytes.Buffer takes every byte
	_ = w.Close()
	return buf.Bytes()
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func colType(t *testing.T, tb catalog.Table, name string) string {
	t.Helper()
	c, ok := tb.Column(name)
	if !ok {
		t.Fatalf("no column %s in %v", name, tb.Columns)
	}
	return c.Type.String()
}

func TestJSONInference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, cat := memstore.New(), memstore.New()
	put(t, src, "events/year=2024/month=3/a.json", []byte(
		`{"id":1,"ctx":{"x":"s"},"tags":[1,2],"n":null}
{"id":2.5,"ctx":{"y":true},"flag":true,"tags":[]}
`))
	put(t, src, "events/year=2024/month=4/b.json.gz", gz(
		`{"id":3000000000,"flag":"yes","items":[{"p":1},{"q":"z"}],"ctx":{"x":"t","z":{"deep":[1.5]}}}
not json at all
`))
	put(t, src, "events/year=2024/month=4/empty.json", nil)
	put(t, src, "events/year=2024/month=5/garbage.json", []byte("<html>nope</html>\n"))
	put(t, src, "events/year=2024/month=5/notes.txt", []byte("hello"))
	put(t, src, "events/_errors/x.json", []byte(`{"bad":true}`))
	put(t, src, "events/year=2024/month=5/_SUCCESS", nil)

	store := catalog.New(cat)
	res, err := Crawl(ctx, src, Target{Database: "lake", Path: "events/", Location: "s3://b/events/"}, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tb, err := store.GetTable(ctx, "lake", "events")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id":    "double",
		"ctx":   "struct<x:string,y:boolean,z:struct<deep:array<double>>>",
		"tags":  "array<int>",
		"n":     "string",
		"flag":  "string",
		"items": "array<struct<p:int,q:string>>",
	}
	for name, typ := range want {
		if got := colType(t, tb, name); got != typ {
			t.Errorf("%s: %s, want %s", name, got, typ)
		}
	}
	var names []string
	for _, c := range tb.Columns {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"id", "ctx", "tags", "n", "flag", "items"}) {
		t.Errorf("column order %v", names)
	}
	conf := map[string]catalog.Conflict{}
	for _, c := range res.Conflicts {
		conf[c.Path] = c
	}
	if c := conf["id"]; !c.Widened || c.Resolved != "double" || !slices.Contains(c.Types, "bigint") {
		t.Errorf("id conflict %+v", c)
	}
	if c := conf["flag"]; c.Widened || c.Resolved != "string" || c.Key != "events/year=2024/month=4/b.json.gz" {
		t.Errorf("flag conflict %+v", c)
	}
	if len(tb.Conflicts) != len(res.Conflicts) {
		t.Errorf("table conflicts %v", tb.Conflicts)
	}
	if !slices.EqualFunc(tb.PartitionKeys, []catalog.Column{{Name: "year", Type: catalog.Prim(catalog.KindInt)}, {Name: "month", Type: catalog.Prim(catalog.KindInt)}}, func(a, b catalog.Column) bool {
		return a.Name == b.Name && a.Type.Equal(b.Type)
	}) {
		t.Errorf("partition keys %v", tb.PartitionKeys)
	}
	skipped := map[string]bool{}
	for _, s := range res.Skipped {
		skipped[s.Key] = true
	}
	if !skipped["events/year=2024/month=5/garbage.json"] || !skipped["events/year=2024/month=5/notes.txt"] || len(skipped) != 2 {
		t.Errorf("skipped %v", res.Skipped)
	}
	parts, _ := store.ListPartitions(ctx, "lake", "events")
	if len(parts) != 3 || res.PartitionsAdded != 3 || parts[1].Files != 2 || parts[1].Location != "s3://b/events/year=2024/month=4/" {
		t.Errorf("partitions %+v", parts)
	}

	// A new column and a vanished folder.
	put(t, src, "events/year=2024/month=6/c.json", []byte(`{"id":7,"extra":"new"}`+"\n"))
	for _, k := range []string{"events/year=2024/month=5/garbage.json", "events/year=2024/month=5/notes.txt", "events/year=2024/month=5/_SUCCESS"} {
		if err := src.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	res2, err := Crawl(ctx, src, Target{Database: "lake", Path: "events", Location: "s3://b/events/"}, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tb2, _ := store.GetTable(ctx, "lake", "events")
	if tb2.Version != tb.Version+1 || !slices.Equal(res2.ColumnsAdded, []string{"extra"}) || tb2.Columns[len(tb2.Columns)-1].Name != "extra" {
		t.Errorf("recrawl: version %d->%d, added %v", tb.Version, tb2.Version, res2.ColumnsAdded)
	}
	if colType(t, tb2, "id") != "double" {
		t.Errorf("id narrowed to %s", colType(t, tb2, "id"))
	}
	if res2.PartitionsAdded != 1 || res2.PartitionsGone != 1 {
		t.Errorf("recrawl partitions: added %d gone %d", res2.PartitionsAdded, res2.PartitionsGone)
	}
	parts, _ = store.ListPartitions(ctx, "lake", "events")
	if len(parts) != 4 || !parts[2].Missing {
		t.Errorf("partitions after recrawl %+v", parts)
	}
	// Nothing changed: no new version.
	if _, err := Crawl(ctx, src, Target{Database: "lake", Path: "events", Location: "s3://b/events/"}, store, Options{}, quiet()); err != nil {
		t.Fatal(err)
	}
	if tb3, _ := store.GetTable(ctx, "lake", "events"); tb3.Version != tb2.Version {
		t.Errorf("unchanged recrawl bumped version %d -> %d", tb2.Version, tb3.Version)
	}
}

func TestSegmentLogs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, cat := memstore.New(), memstore.New()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 300
	cfg.MalformedRate = 0.01
	sum, err := segmentgen.Generate(ctx, src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	put(t, src, "segment-logs/ios/_staging/tmp.gz", []byte("partial"))
	store := catalog.New(cat)
	res, err := Crawl(ctx, src, Target{Database: "segment", TablePrefix: "raw_", Path: "segment-logs/ios/", Location: "file:///data/segment-logs/ios/"}, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tables, []string{"segment.raw_ios"}) {
		t.Fatalf("tables %v", res.Tables)
	}
	tb, _ := store.GetTable(ctx, "segment", "raw_ios")
	if len(tb.PartitionKeys) != 1 || tb.PartitionKeys[0].Name != "received_day" || tb.PartitionKeys[0].Type.Kind != catalog.KindDate {
		t.Fatalf("partition keys %v", tb.PartitionKeys)
	}
	if tb.Format != "json" || tb.Compression != "gzip" {
		t.Errorf("format %s/%s", tb.Format, tb.Compression)
	}
	for name, typ := range map[string]string{"messageId": "string", "timestamp": "string", "version": "int"} {
		if got := colType(t, tb, name); got != typ {
			t.Errorf("%s: %s want %s", name, got, typ)
		}
	}
	ctxType := colType(t, tb, "context")
	for _, want := range []string{"app:struct<build:string", "screen:struct<height:int,width:int>", "device:struct<"} {
		if !strings.Contains(ctxType, want) {
			t.Errorf("context type lacks %s: %s", want, ctxType)
		}
	}
	// Both SDKs send a userAgent; only Android sends a screen density.
	if strings.Contains(ctxType, "density") {
		t.Errorf("iOS table has android-only fields: %s", ctxType)
	}
	parts, _ := store.ListPartitions(ctx, "segment", "raw_ios")
	var iosFolders []segmentgen.Folder
	for _, f := range sum.Folders {
		if f.Source == "ios" {
			iosFolders = append(iosFolders, f)
		}
	}
	if len(parts) != len(iosFolders) {
		t.Fatalf("%d partitions, generator wrote %d folders", len(parts), len(iosFolders))
	}
	for i, p := range parts {
		f := iosFolders[i]
		if p.Values[0] != f.Day || p.Files != len(f.Files) || p.Location != "file:///data/"+f.Prefix {
			t.Errorf("partition %+v vs folder %s %s %d", p, f.Day, f.Prefix, len(f.Files))
		}
	}
	var b strings.Builder
	if err := catalog.Describe(&b, tb, parts); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}

type outRow struct {
	MessageID string    `parquet:"message_id"`
	Timestamp time.Time `parquet:"timestamp,timestamp(millisecond)"`
	Model     string    `parquet:"context_device_model,optional"`
	Count     int64     `parquet:"event_count"`
	Revenue   float64   `parquet:"revenue"`
	Screens   []string  `parquet:"screens,list"`
}

func parquetFile(t *testing.T, rows []outRow) []byte {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[outRow](&buf, parquet.Compression(&parquet.Snappy))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParquetOutput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, cat := memstore.New(), memstore.New()
	ts := time.Date(2024, 3, 9, 12, 0, 0, 0, time.UTC)
	put(t, src, "year=2024/month=3/date=2024-03-09/part-0.parquet", parquetFile(t, []outRow{{"a", ts, "iPhone", 3, 9.99, []string{"Home"}}, {"b", ts, "", 1, 0, nil}}))
	put(t, src, "year=2024/month=3/date=2024-03-09/part-1.parquet", parquetFile(t, []outRow{{"c", ts, "Pixel", 2, 1, nil}}))
	put(t, src, "year=2024/month=3/date=2024-03-10/part-0.parquet", parquetFile(t, []outRow{{"d", ts, "Pixel", 2, 1, nil}}))
	put(t, src, "_staging/run-1/part-0.parquet", []byte("half written"))
	store := catalog.New(cat)
	res, err := Crawl(ctx, src, Target{Database: "analytics", Path: "", Location: "s3://out/mobile_user_daily/"}, store, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tb, err := store.GetTable(ctx, "analytics", "mobile_user_daily")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"message_id string", "timestamp timestamp", "context_device_model string", "event_count bigint", "revenue double", "screens array<string>"}
	var got []string
	for _, c := range tb.Columns {
		got = append(got, c.Name+" "+c.Type.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("columns %v\nwant %v", got, want)
	}
	if tb.Format != "parquet" || tb.Compression != "snappy" {
		t.Errorf("format %s/%s", tb.Format, tb.Compression)
	}
	var keys []string
	for _, k := range tb.PartitionKeys {
		keys = append(keys, k.Name+" "+k.Type.String())
	}
	if !slices.Equal(keys, []string{"year int", "month int", "date string"}) {
		t.Errorf("partition keys %v", keys)
	}
	parts, _ := store.ListPartitions(ctx, "analytics", "mobile_user_daily")
	if len(parts) != 2 || parts[0].Rows != 3 || parts[0].Files != 2 || parts[1].Rows != 1 || !slices.Equal(parts[0].Values, []string{"2024", "3", "2024-03-09"}) {
		t.Errorf("partitions %+v", parts)
	}
	if len(res.Skipped) != 0 || res.PartitionsAdded != 2 {
		t.Errorf("result %+v", res)
	}
}

func TestTableNameAndEpochDays(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Path: "segment-logs/ios/", TablePrefix: "raw_"}, "raw_ios"},
		{Target{Path: "segment-logs/My-App.v2"}, "my_app_v2"},
		{Target{Path: "", Location: "s3://bucket/out/mobile_user_daily/"}, "mobile_user_daily"},
		{Target{Path: "x/", TableName: "Custom"}, "custom"},
	} {
		got, err := TableName(c.t)
		if err != nil || got != c.want {
			t.Errorf("TableName(%+v) = %q, %v; want %q", c.t, got, err, c.want)
		}
	}
	if _, err := TableName(Target{Location: "file:///"}); err == nil {
		t.Errorf("no name derivable, but no error")
	}
	if !isEpochDay("1709942400000") || isEpochDay("1709942400001") || isEpochDay("170994240000") {
		t.Errorf("isEpochDay")
	}
	// Plain folders that are not all epoch days become partition_N.
	l := detectLayout([]object{{rel: "a/x/f", dirs: []string{"a", "x"}}, {rel: "1709942400000/y/f", dirs: []string{"1709942400000", "y"}}})
	if l.keys[0].Name != "partition_0" || l.keys[1].Name != "partition_1" {
		t.Errorf("keys %v", l.keys)
	}
}
