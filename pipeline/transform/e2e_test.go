package transform

import (
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage/filestore"
)

// TestSegmentgenEndToEnd runs the job on generated logs in local folders and
// checks rows per date against the generator's own answer. With
// SLUICE_ORACLE=/path/to/oracle (refbench) it also asks the oracle; with
// SLUICE_KEEP=dir the input and output folders are kept there;
// SLUICE_EVENTS_PER_DAY sets the generator's volume.
func TestSegmentgenEndToEnd(t *testing.T) {
	dir := t.TempDir()
	if keep := os.Getenv("SLUICE_KEEP"); keep != "" {
		dir = keep
	}
	in, _ := filestore.New(filepath.Join(dir, "in"))
	scratch, _ := filestore.New(filepath.Join(dir, "scratch"))
	out, _ := filestore.New(filepath.Join(dir, "out"))
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 3000
	if n, err := strconv.Atoi(os.Getenv("SLUICE_EVENTS_PER_DAY")); err == nil {
		cfg.EventsPerDay = n
	}
	sum, err := segmentgen.Generate(context.Background(), in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := DateOf(cfg.Start)
	w := Window{Start: start, End: start.AddDays(cfg.Days - 1)}
	spec := DefaultSpec()
	spec.ShardBytes = sum.CompressedBytes/5 + 1
	res := runJob(t, in, scratch, out, spec, w, ReduceOptions{})
	if len(res.shards) < 4 {
		t.Errorf("%d shards", len(res.shards))
	}
	var total MapStats
	for _, m := range res.maps {
		total.Add(m)
	}
	if total.LinesRead != sum.Lines || total.QuarantinedTotal() != sum.Malformed {
		t.Errorf("lines %d quarantined %d; generator wrote %d lines, %d malformed", total.LinesRead, total.QuarantinedTotal(), sum.Lines, sum.Malformed)
	}
	for _, p := range res.parts {
		if want := sum.ExpectedFor(p.Date.String()); p.Rows != want {
			t.Errorf("%s: %d rows, want %d", p.Date, p.Rows, want)
		}
		if len(p.Collisions) > 0 {
			t.Errorf("collisions %v", p.Collisions)
		}
	}
	if err := Cleanup(context.Background(), scratch, scratchPrefix); err != nil {
		t.Fatal(err)
	}
	oracle := os.Getenv("SLUICE_ORACLE")
	if oracle == "" {
		return
	}
	cmd := exec.Command(oracle, "-in", filepath.Join(dir, "in"), "-out", filepath.Join(dir, "out"),
		"-start", w.Start.String(), "-end", w.End.String(), "-sample", "1000")
	outb, err := cmd.CombinedOutput()
	t.Logf("oracle:\n%s", outb)
	if err != nil || !strings.Contains(string(outb), "oracle: PASS") {
		t.Errorf("oracle failed: %v", err)
	}
}

// benchInput generates logs in memory once per benchmark.
func benchInput(b *testing.B, eventsPerDay int) (*memBucket, Window, segmentgen.Summary) {
	b.Helper()
	in := newMemBucket()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = eventsPerDay
	sum, err := segmentgen.Generate(context.Background(), in, cfg)
	if err != nil {
		b.Fatal(err)
	}
	start := DateOf(cfg.Start)
	return in, Window{Start: start, End: start.AddDays(cfg.Days - 1)}, sum
}

func benchSpec() Spec {
	s := DefaultSpec()
	s.ShardBytes = 1 << 40 // one shard: one core's throughput
	return s
}

// BenchmarkMapShard measures the map phase on one core; MB/s is of
// uncompressed input.
func BenchmarkMapShard(b *testing.B) {
	in, w, sum := benchInput(b, 20000)
	ctx := context.Background()
	shards, err := PlanShards(ctx, in, benchSpec(), w)
	if err != nil || len(shards) != 1 {
		b.Fatal(err, len(shards))
	}
	b.SetBytes(sum.Bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := MapShard(ctx, in, newMemBucket(), "bench", benchSpec(), w, shards[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReducePartition reduces every date of the window per iteration;
// MB/s is of the uncompressed input those rows came from.
func BenchmarkReducePartition(b *testing.B) {
	for _, format := range []string{"parquet", "csv"} {
		b.Run(format, func(b *testing.B) {
			in, w, sum := benchInput(b, 20000)
			ctx := context.Background()
			spec := benchSpec()
			spec.Format = format
			if format == "csv" {
				spec.Compression = "gzip"
			}
			shards, _ := PlanShards(ctx, in, spec, w)
			scratch := newMemBucket()
			if _, err := MapShard(ctx, in, scratch, "bench", spec, w, shards[0]); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(sum.Bytes)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				out := newMemBucket()
				for _, d := range w.Dates() {
					if _, err := ReducePartition(ctx, scratch, "bench", out, spec, d, 1, ReduceOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkJob is plan + map + reduce of every date on one goroutine.
func BenchmarkJob(b *testing.B) {
	in, w, sum := benchInput(b, 20000)
	ctx := context.Background()
	spec := benchSpec()
	b.SetBytes(sum.Bytes)
	b.ResetTimer()
	for b.Loop() {
		shards, _ := PlanShards(ctx, in, spec, w)
		scratch, out := newMemBucket(), newMemBucket()
		for _, sh := range shards {
			if _, err := MapShard(ctx, in, scratch, "bench", spec, w, sh); err != nil {
				b.Fatal(err)
			}
		}
		for _, d := range w.Dates() {
			if _, err := ReducePartition(ctx, scratch, "bench", out, spec, d, len(shards), ReduceOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestSpillMatchesInMemory reduces generated dates with memory budgets that
// force the spill path (hash-partitioned dedupe, sorted runs, merge) and
// checks every published file is byte-identical to the in-memory reduce.
func TestSpillMatchesInMemory(t *testing.T) {
	in := newMemBucket()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 1500
	cfg.DuplicateRate = 0.05 // copies across files, sources and dates
	cfg.LateRate = 0.1
	if _, err := segmentgen.Generate(context.Background(), in, cfg); err != nil {
		t.Fatal(err)
	}
	start := DateOf(cfg.Start)
	w := Window{Start: start, End: start.AddDays(cfg.Days - 1)}
	for _, format := range []string{"parquet", "csv"} {
		spec := DefaultSpec()
		spec.Format = format
		if format == "csv" {
			spec.Compression = "gzip"
		}
		spec.ShardBytes = 200 << 10 // several shards, so the merge sees several files
		want := newMemBucket()
		base := runJob(t, in, newMemBucket(), want, spec, w, ReduceOptions{RowGroupRows: 1000})
		for _, budget := range []int64{256 << 10, 1 << 20, 3 << 20} {
			got := newMemBucket()
			res := runJob(t, in, newMemBucket(), got, spec, w, ReduceOptions{RowGroupRows: 1000, MemoryBytes: budget, TempDir: t.TempDir()})
			runs := 0
			for i, p := range res.parts {
				runs += p.SpillRuns
				if p.Rows != base.parts[i].Rows || p.Duplicates != base.parts[i].Duplicates {
					t.Errorf("%s budget %d %s: rows %d dups %d, in memory %d %d", format, budget, p.Date, p.Rows, p.Duplicates, base.parts[i].Rows, base.parts[i].Duplicates)
				}
			}
			t.Logf("%s budget %d: %d spilled runs", format, budget, runs)
			if budget < 1<<20 && runs < 2*len(res.parts) {
				t.Errorf("%s budget %d: %d runs, the spill path was not exercised", format, budget, runs)
			}
			a, b := want.snapshot(), got.snapshot()
			if len(a) != len(b) {
				t.Errorf("%s budget %d: %d objects, want %d", format, budget, len(b), len(a))
			}
			for k, v := range a {
				if !bytes.Equal(v, b[k]) {
					t.Errorf("%s budget %d: %s differs from the in-memory reduce", format, budget, k)
				}
			}
		}
	}
}

// TestGeneratedColumnsStable runs the job on a small and a larger sample of
// different seeds: every partition of both must have the same columns with
// the same types, so the demo's table looks like a benchmark run's.
func TestGeneratedColumnsStable(t *testing.T) {
	var want table
	for _, run := range []struct {
		seed         int64
		eventsPerDay int
	}{{1, 2000}, {7, 40}} {
		in := newMemBucket()
		cfg := segmentgen.DefaultConfig()
		cfg.Seed, cfg.EventsPerDay = run.seed, run.eventsPerDay
		if _, err := segmentgen.Generate(context.Background(), in, cfg); err != nil {
			t.Fatal(err)
		}
		start := DateOf(cfg.Start)
		w := Window{Start: start, End: start.AddDays(cfg.Days - 1)}
		out := newMemBucket()
		runJob(t, in, newMemBucket(), out, DefaultSpec(), w, ReduceOptions{})
		for _, d := range w.Dates() {
			got := readPartition(t, out, d.String())
			if want.cols == nil {
				want = got
				t.Logf("%d columns: %v", len(got.cols), got.cols)
				continue
			}
			if !slices.Equal(got.cols, want.cols) || !maps.Equal(got.types, want.types) {
				t.Errorf("seed %d, %d events a day, %s: columns\n%v\n%v\nwant\n%v\n%v", run.seed, run.eventsPerDay, d, got.cols, got.types, want.cols, want.types)
			}
		}
	}
}
