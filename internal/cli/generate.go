package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"sluice/internal/config"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage/storeurl"
)

func generate(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("generate")
	common.Register(fs)
	def := segmentgen.DefaultConfig()
	out := fs.String("raw", "./sluice-data/raw", "where to write segment-logs/… (s3://bucket/prefix, file:///path or a folder): the workflow's raw location")
	seed := fs.Int64("seed", def.Seed, "random seed; the same seed writes the same bytes")
	startDate := fs.String("start", def.Start.Format(time.DateOnly), "first Pacific event date")
	days := fs.Int("days", def.Days, "number of event days")
	events := fs.Int("events-per-day", def.EventsPerDay, "events per source per day, before duplicates")
	files := fs.Int("files-per-day", def.FilesPerDay, "files per source per received-day folder")
	malformed := fs.Float64("malformed-rate", def.MalformedRate, "extra broken lines (bad JSON, missing ids, invalid timestamps) as a share of events; 0 writes none")
	if err := parse(fs, args); err != nil {
		return err
	}
	start, err := time.Parse(time.DateOnly, *startDate)
	if err != nil {
		return usageErr(fmt.Errorf("-start: %q is not YYYY-MM-DD", *startDate))
	}
	b, err := storeurl.Open(ctx, *out, common.S3)
	if err != nil {
		return fmt.Errorf("-raw (SLUICE_RAW): %w", err)
	}
	cfg := def
	cfg.Seed, cfg.Start, cfg.Days, cfg.EventsPerDay, cfg.FilesPerDay = *seed, start, *days, *events, *files
	cfg.MalformedRate = *malformed
	began := time.Now()
	sum, err := segmentgen.Generate(ctx, b, cfg)
	if err != nil {
		return err
	}
	printGenerated(stdout, b.Location(), sum, time.Since(began))
	return nil
}

func printGenerated(w io.Writer, loc string, sum segmentgen.Summary, took time.Duration) {
	fmt.Fprintf(w, "wrote %d lines (%d distinct events, %d duplicate copies, %d late, %d malformed) in %d folders to %s: %.1f MB uncompressed, %.1f MB gzip, %s\n",
		sum.Lines, sum.Events, sum.Duplicates, sum.Late, sum.Malformed, len(sum.Folders), loc,
		float64(sum.Bytes)/1e6, float64(sum.CompressedBytes)/1e6, took.Round(time.Millisecond))
	for _, d := range sum.Expected {
		fmt.Fprintf(w, "  %s: %d distinct events expected in the output\n", d.Date, d.MessageIDs)
	}
}
