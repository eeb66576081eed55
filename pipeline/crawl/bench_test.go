package crawl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sluice/pipeline/catalog"
	"sluice/pipeline/storage/filestore"
)

// Benchmark layout: benchDays received-day folders of benchFiles tiny gzip
// NDJSON objects each (100,000 objects by default). SLUICE_CRAWL_BENCH_DAYS
// and SLUICE_CRAWL_BENCH_FILES change it.
func benchLayout() (days, files int) {
	days, files = 400, 250
	if n, err := strconv.Atoi(os.Getenv("SLUICE_CRAWL_BENCH_DAYS")); err == nil && n > 0 {
		days = n
	}
	if n, err := strconv.Atoi(os.Getenv("SLUICE_CRAWL_BENCH_FILES")); err == nil && n > 0 {
		files = n
	}
	return days, files
}

var benchStart = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)

// writeBenchDay writes one day folder straight to disk (no fsync: this is
// a fixture, not a store).
func writeBenchDay(root string, day, files int, body []byte) error {
	ms := benchStart.AddDate(0, 0, day).UnixMilli()
	dir := filepath.Join(root, "segment-logs", "bench", strconv.FormatInt(ms, 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for f := range files {
		name := fmt.Sprintf("%d.%08x.gz", ms+int64(f)*1000, f)
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeBenchLayout(b *testing.B, root string, days, files int) {
	body := gz(`{"messageId":"m1","type":"track","event":"Opened","context":{"app":{"build":"1"},"device":{"model":"x"}},"properties":{"price":1.5},"timestamp":"2024-03-09T10:00:00Z"}` + "\n" +
		`{"messageId":"m2","type":"screen","name":"Home","context":{"app":{"build":"2"}},"timestamp":"2024-03-09T10:00:01Z"}` + "\n")
	var wg sync.WaitGroup
	errs := make(chan error, days)
	sem := make(chan struct{}, 16)
	for d := range days {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := writeBenchDay(root, d, files, body); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// peakHeap samples the heap in use until stop is called, and returns the
// largest value seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// BenchmarkCrawl crawls a generated layout of 100,000 small objects over
// 400 day folders: Full is a first crawl into an empty catalog; Incremental
// is the daily case, one new day folder since the last crawl. Both report
// objects listed per second and the peak heap in use.
//
//	go test ./pipeline/crawl -run '^$' -bench Crawl -benchtime 3x
func BenchmarkCrawl(b *testing.B) {
	ctx := context.Background()
	days, files := benchLayout()
	root := b.TempDir()
	start := time.Now()
	writeBenchLayout(b, root, days, files)
	b.Logf("layout: %d objects in %d folders, written in %s", days*files, days, time.Since(start).Round(time.Millisecond))
	src, err := filestore.New(root)
	if err != nil {
		b.Fatal(err)
	}
	target := Target{Database: "bench", TableName: "events", Path: "segment-logs/bench/", Location: "s3://raw/segment-logs/bench/"}

	run := func(b *testing.B, setup func(i int) (*catalog.Store, Options)) {
		var objects, sampled int
		var elapsed time.Duration
		var peak uint64
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			store, opts := setup(i)
			runtime.GC()
			stop := peakHeap()
			b.StartTimer()
			t0 := time.Now()
			res, err := Crawl(ctx, src, target, store, opts, quiet())
			elapsed += time.Since(t0)
			b.StopTimer()
			peak = max(peak, stop())
			if err != nil {
				b.Fatal(err)
			}
			objects += res.ObjectsListed
			sampled += res.FilesSampled
			b.StartTimer()
		}
		b.ReportMetric(float64(objects)/elapsed.Seconds(), "objects/s")
		b.ReportMetric(float64(sampled)/float64(b.N), "files-read/op")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	}

	b.Run("Full", func(b *testing.B) {
		run(b, func(int) (*catalog.Store, Options) {
			cat, err := filestore.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return catalog.New(cat), Options{Recrawl: RecrawlEverything}
		})
	})

	b.Run("Incremental", func(b *testing.B) {
		cat, err := filestore.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		store := catalog.New(cat)
		if _, err := Crawl(ctx, src, target, store, Options{}, quiet()); err != nil {
			b.Fatal(err)
		}
		body := gz(`{"messageId":"m3","type":"track","event":"Closed","timestamp":"2024-03-10T10:00:00Z"}` + "\n")
		run(b, func(i int) (*catalog.Store, Options) {
			// One more day folder than at the last crawl.
			if err := writeBenchDay(root, days+i, files, body); err != nil {
				b.Fatal(err)
			}
			return store, Options{}
		})
	})
}
