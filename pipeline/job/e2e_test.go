package job_test

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

	"sluice/pipeline/civil"
	"sluice/pipeline/job"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

func genWindow(cfg segmentgen.Config) civil.Window {
	start := civil.DateOf(cfg.Start)
	return civil.Window{Start: start, End: start.AddDays(cfg.Days - 1)}
}

// TestSegmentgenEndToEnd runs the job on generated logs in local folders and
// checks rows per date against the generator's own answer. With
// SLUICE_ORACLE=/path/to/oracle (refbench) it also asks the oracle; with
// SLUICE_KEEP=dir the input and output folders are kept there;
// SLUICE_EVENTS_PER_DAY sets the generator's volume.
func TestSegmentgenEndToEnd(t *testing.T) {
	t.Parallel()
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
	w := genWindow(cfg)
	spec := transform.DefaultSpec()
	spec.ShardBytes = sum.CompressedBytes/5 + 1
	spec.TargetFileBytes = 256 << 10 // several files a date
	s := newStep(in, scratch, out, spec, w)
	res := runJob(t, s)
	if res.shards < 4 {
		t.Errorf("%d shards", res.shards)
	}
	var quarantined int64
	for _, n := range res.summary.Quarantined {
		quarantined += n
	}
	if res.summary.LinesRead != sum.Lines || quarantined != sum.Malformed {
		t.Errorf("lines %d quarantined %d; generator wrote %d lines, %d malformed", res.summary.LinesRead, quarantined, sum.Lines, sum.Malformed)
	}
	for _, d := range w.Dates() {
		if got, want := res.summary.Partitions[d.String()], sum.ExpectedFor(d.String()); got != want {
			t.Errorf("%s: %d rows, want %d", d, got, want)
		}
		if res.summary.Files[d.String()] < 2 {
			t.Errorf("%s: %d files", d, res.summary.Files[d.String()])
		}
	}
	if len(res.summary.Collisions) > 0 {
		t.Errorf("collisions %v", res.summary.Collisions)
	}
	if err := s.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left, _ := storage.ListKeys(context.Background(), scratch, "", nil); len(left) > 0 {
		t.Errorf("scratch holds %d objects after cleanup", len(left))
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

// TestSpillMatchesInMemory maps and reduces generated dates with memory
// budgets that force the map's sorted runs and the reduce's chunks (sorted
// runs merged), planned for a larger fleet (other column groups, other
// encode tasks), and checks every published file is byte-identical to the
// in-memory build.
func TestSpillMatchesInMemory(t *testing.T) {
	t.Parallel()
	in := memstore.New()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 4000  // files larger than the dictionary sample
	cfg.DuplicateRate = 0.05 // copies across files, sources and dates
	cfg.LateRate = 0.1
	if _, err := segmentgen.Generate(context.Background(), in, cfg); err != nil {
		t.Fatal(err)
	}
	w := genWindow(cfg)
	for _, format := range []string{"parquet", "csv"} {
		spec := transform.DefaultSpec()
		spec.Format = format
		if format == "csv" {
			spec.Compression = "gzip"
		}
		spec.ShardBytes = 400 << 10    // several shards, so a file's rows come from several
		spec.TargetFileBytes = 4 << 20 // one file a date, larger than the sample
		want := memstore.New()
		s := newStep(in, memstore.New(), want, spec, w)
		s.ReduceOptions.RowGroupBytes = 64 << 10 // several row groups
		base := runJob(t, s)
		for _, budget := range []int64{256 << 10, 1 << 20} {
			got := memstore.New()
			s := newStep(in, memstore.New(), got, spec, w)
			s.ReduceOptions = reduce.Options{RowGroupBytes: 64 << 10, MemoryBytes: budget, TempDir: t.TempDir()}
			// A fleet of another size: other column groups, the same bytes.
			s.PlanOptions.MinTasks, s.PlanOptions.MinGroupBytes = 64, 1<<10
			s.MapOptions = mapper.Options{BufferBytes: budget, TempDir: t.TempDir()}
			res := runJob(t, s)
			chunks := 0
			for _, r := range res.reduced {
				chunks += r.Chunks
			}
			t.Logf("%s budget %d: %d slices in %d chunks", format, budget, len(res.reduced), chunks)
			if budget < 1<<20 && chunks <= len(res.reduced) {
				t.Errorf("%s budget %d: %d chunks for %d slices: the spill path was not exercised", format, budget, chunks, len(res.reduced))
			}
			if res.summary.RowsWritten != base.summary.RowsWritten || res.summary.Duplicates != base.summary.Duplicates {
				t.Errorf("%s budget %d: %d rows %d duplicates; in memory %d %d", format, budget,
					res.summary.RowsWritten, res.summary.Duplicates, base.summary.RowsWritten, base.summary.Duplicates)
			}
			a, b := byFile(want.Objects()), byFile(got.Objects())
			if len(a) != len(b) || len(a) < 3 {
				t.Errorf("%s budget %d: %d files, want %d", format, budget, len(b), len(a))
			}
			for k, v := range a {
				if !bytes.Equal(v, b[k]) {
					t.Errorf("%s budget %d: %s differs from the in-memory build", format, budget, k)
				}
			}
		}
	}
}

// remoteBucket is a memory bucket that says it is an object store, so the
// map compresses its intermediates.
type remoteBucket struct{ *memstore.Bucket }

func (remoteBucket) Location() string { return "s3://scratch/" }

// TestIntermediateCompression maps the same input into a local and a
// remote scratch: the remote intermediates are S2-compressed, the local
// ones are not, and the reduce publishes the same bytes from either.
func TestIntermediateCompression(t *testing.T) {
	t.Parallel()
	in := memstore.New()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 4000
	if _, err := segmentgen.Generate(context.Background(), in, cfg); err != nil {
		t.Fatal(err)
	}
	w := genWindow(cfg)
	spec := transform.DefaultSpec()
	spec.TargetFileBytes = 256 << 10
	local, remote := memstore.New(), remoteBucket{memstore.New()}
	outLocal, outRemote := memstore.New(), memstore.New()
	sl, sr := newStep(in, local, outLocal, spec, w), newStep(in, remote, outRemote, spec, w)
	runJob(t, sl)
	runJob(t, sr)
	var localBytes, remoteBytes int
	rem := remote.Objects()
	for k, v := range local.Objects() {
		if strings.HasSuffix(k, ".rows") || strings.HasSuffix(k, ".ids") {
			localBytes += len(v)
			remoteBytes += len(rem[k])
		}
	}
	// Each virtual bucket's segment is compressed on its own, so small
	// shards compress less than one stream would (here about 5 KB a
	// segment; production shards' are tens of KB).
	t.Logf("intermediates: %d bytes local, %d remote (S2)", localBytes, remoteBytes)
	if localBytes == 0 || remoteBytes*3 > localBytes*2 {
		t.Errorf("intermediates: %d bytes in the local scratch, %d in the remote one", localBytes, remoteBytes)
	}
	a, b := outLocal.Objects(), outRemote.Objects()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d and %d output objects", len(a), len(b))
	}
	for k, v := range a {
		if strings.HasPrefix(k, "_sluice/") {
			continue // bookmarks carry build times
		}
		if !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs between local and remote scratch", k)
		}
	}
}

// benchInput generates logs in memory once per benchmark;
// SLUICE_BENCH_EVENTS_PER_DAY overrides the volume (smaller runs suit
// instruction counts under callgrind).
func benchInput(b *testing.B, eventsPerDay int) (*memstore.Bucket, civil.Window, segmentgen.Summary) {
	b.Helper()
	in := memstore.New()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = eventsPerDay
	if n, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_EVENTS_PER_DAY")); err == nil {
		cfg.EventsPerDay = n
	}
	cfg.MalformedRate = 0
	sum, err := segmentgen.Generate(context.Background(), in, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return in, genWindow(cfg), sum
}

func benchSpec() transform.Spec {
	s := transform.DefaultSpec()
	s.ShardBytes = 1 << 40 // one shard: one core's throughput
	return s
}

// BenchmarkMapShard measures the map phase on one core; MB/s is of
// uncompressed input.
func BenchmarkMapShard(b *testing.B) {
	in, w, sum := benchInput(b, 20000)
	ctx := context.Background()
	var objs []transform.Object
	err := in.List(ctx, "segment-logs/", func(oi storage.ObjectInfo) error {
		objs = append(objs, transform.Object{Source: strings.Split(oi.Key, "/")[1], Key: oi.Key, Size: oi.Size, ETag: oi.ETag})
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	shard := job.CutShards(objs, 1<<40)[0]
	b.SetBytes(sum.Bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := mapper.MapShard(ctx, in, memstore.New(), "bench", benchSpec(), w, shard, mapper.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJob is every phase of the job on one goroutine; MB/s is of
// uncompressed input.
func BenchmarkJob(b *testing.B) {
	for _, format := range []string{"parquet", "csv"} {
		b.Run(format, func(b *testing.B) {
			in, w, sum := benchInput(b, 20000)
			spec := benchSpec()
			spec.Format = format
			if format == "csv" {
				spec.Compression = "gzip"
			}
			b.SetBytes(sum.Bytes)
			b.ReportAllocs()
			b.ResetTimer()
			var out int64
			for b.Loop() {
				res, err := tryJob(newStep(in, memstore.New(), memstore.New(), spec, w))
				if err != nil {
					b.Fatal(err)
				}
				out = res.summary.OutputBytes
			}
			b.ReportMetric(float64(out)/float64(sum.Bytes), "out/in")
		})
	}
}

// TestGeneratedColumnsStable runs the job on a small and a larger sample of
// different seeds: every partition of both must have the same columns with
// the same types, so the demo's table looks like a benchmark run's.
func TestGeneratedColumnsStable(t *testing.T) {
	t.Parallel()
	var want table
	for _, run := range []struct {
		seed         int64
		eventsPerDay int
	}{{1, 2000}, {7, 40}} {
		in := memstore.New()
		cfg := segmentgen.DefaultConfig()
		cfg.Seed, cfg.EventsPerDay = run.seed, run.eventsPerDay
		if _, err := segmentgen.Generate(context.Background(), in, cfg); err != nil {
			t.Fatal(err)
		}
		w := genWindow(cfg)
		out := memstore.New()
		runJob(t, newStep(in, memstore.New(), out, transform.DefaultSpec(), w))
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
