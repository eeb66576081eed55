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
