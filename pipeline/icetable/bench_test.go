package icetable_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sluice/internal/testenv"
	"sluice/pipeline/icetable"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/s3store"
)

// BenchmarkPublish measures the Iceberg commit of a run (icetable.Publish)
// that replaces 3 or 30 dates of 4 files each, on a folder and on
// versitygw: seconds per commit, and the new objects it writes (metadata
// file, manifest list, manifests; the embedded catalog's file is rewritten
// besides). The data files are written
// beforehand, outside the timing: the commit only describes them. Each
// iteration is a new run replacing the same dates, as daily runs do.
func BenchmarkPublish(b *testing.B) {
	for _, store := range []string{"folder", "s3"} {
		for _, dates := range []int{3, 30} {
			b.Run(fmt.Sprintf("%s/dates=%d", store, dates), func(b *testing.B) {
				tb, out, ids := benchTable(b, store)
				// One file's description, reused under other names: the
				// commit does not open data files.
				tmpl := writeFile(b, out, ids, "tmpl.parquet", "2026-01-01", rowsOf("2026-01-01", 100, "x"))
				runs := make([]icetable.Publication, b.N+1)
				for i := range runs {
					p := icetable.Publication{RunID: fmt.Sprintf("run-%d", i), Step: "job", Columns: cols}
					for d := range dates {
						date := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d).Format(time.DateOnly)
						p.Dates = append(p.Dates, date)
						for f := range 4 {
							df := tmpl
							df.Key, df.Date = fmt.Sprintf("year=2026/date=%s/part-%05d-%d.parquet", date, f, i), date
							p.Files = append(p.Files, df)
						}
					}
					runs[i] = p
				}
				if _, err := tb.Publish(context.Background(), runs[b.N]); err != nil { // the table's first snapshot
					b.Fatal(err)
				}
				before := countObjects(b, out)
				b.ResetTimer()
				for i := range b.N {
					res, err := tb.Publish(context.Background(), runs[i])
					if err != nil || !res.Landed || res.Removed != dates*4 {
						b.Fatalf("%+v %v", res, err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(countObjects(b, out)-before)/float64(b.N), "new-objects/op")
			})
		}
	}
}

func countObjects(b testing.TB, out storage.Bucket) int {
	keys, err := storage.ListKeys(context.Background(), out, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	return len(keys)
}

// BenchmarkCompact measures joining a partition's small files into one
// (icetable.Compact): 8 files of about 0.5 MiB, or 4 of about 7 MiB
// (over S3's 5 MiB part minimum, so each is one server-side part copy),
// on a folder and on versitygw: seconds per
// compaction, MB/s of the files joined, and the new objects it writes
// (the joined file and the snapshot's metadata). Each iteration first
// publishes a new build of the date as 8 files, outside the timing. A
// join copies the files' bytes (server-side on S3) and writes a footer:
// what the rows hold does not change its cost, their bytes do.
func BenchmarkCompact(b *testing.B) {
	for _, store := range []string{"folder", "s3"} {
		for _, size := range []struct {
			name               string
			files, rowsPerFile int
		}{{"8x0.5MiB", 8, 100_000}, {"4x7MiB", 4, 1_500_000}} {
			b.Run(store+"/"+size.name, func(b *testing.B) { compactBench(b, store, size.files, size.rowsPerFile) })
		}
	}
}

func compactBench(b *testing.B, store string, files, rowsPerFile int) {
	tb, out, ids := benchTable(b, store)
	const date = "2026-01-01"
	var joined, newObjects int64
	for i := range b.N {
		b.StopTimer()
		p := icetable.Publication{RunID: fmt.Sprintf("run-%d", i), Step: "job", Columns: cols, Dates: []string{date}}
		for f := range files {
			key := fmt.Sprintf("year=2026/month=1/date=%s/part-%05d-%d.parquet", date, f, i)
			p.Files = append(p.Files, writeFile(b, out, ids, key, date, rowsOf(date, rowsPerFile, fmt.Sprintf("r%d-f%d", i, f))))
		}
		if _, err := tb.Publish(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		before := countObjects(b, out)
		b.StartTimer()
		res, err := tb.Compact(context.Background(), icetable.CompactOptions{ID: fmt.Sprintf("c-%d", i), TargetFileBytes: 256 << 20})
		if err != nil || !res.Landed || res.Joined != files || res.Written != 1 {
			b.Fatalf("%+v %v", res, err)
		}
		b.StopTimer()
		joined += res.Bytes
		newObjects += int64(countObjects(b, out) - before)
		b.StartTimer()
	}
	b.ReportMetric(float64(joined)/float64(b.N)/(1<<20), "MiB-joined/op")
	b.ReportMetric(float64(joined)/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
	b.ReportMetric(float64(newObjects)/float64(b.N), "new-objects/op")
}

// benchTable is a new table with the test columns on a folder ("folder")
// or on a versitygw bucket ("s3"), its bucket, and its field ids.
func benchTable(b *testing.B, store string) (*icetable.Table, storage.Bucket, map[string]int) {
	var out storage.Bucket
	var props map[string]string
	if store == "folder" {
		out, _ = filestore.New(b.TempDir())
	} else {
		srv := testenv.StartS3(b)
		opts := s3store.Options{Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
		var err error
		if out, err = s3store.New(context.Background(), srv.NewBucket(b), "t", opts); err != nil {
			b.Fatal(err)
		}
		props = icetable.IOProperties(opts)
	}
	tb, err := icetable.Open(icetable.Config{Name: "bench"}, out, props)
	if err != nil {
		b.Fatal(err)
	}
	ids, err := tb.EnsureColumns(context.Background(), cols)
	if err != nil {
		b.Fatal(err)
	}
	return tb, out, ids
}
