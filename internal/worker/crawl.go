package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"sluice/pipeline/catalog"
	"sluice/pipeline/crawl"
	"sluice/pipeline/workflow"
	"sluice/tasks"
)

func (w *Worker) handleCrawlRun(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Decode[tasks.CrawlRunPayload](t)
	if err != nil {
		return err
	}
	wf, step, _, ok, err := w.activeStep(ctx, p.StepRef)
	if err != nil || !ok {
		return err
	}
	spec := step.Crawler
	src, err := w.bucket(ctx, spec.Location)
	if err != nil {
		return err
	}
	catBucket, err := w.bucket(ctx, wf.Catalog)
	if err != nil {
		return err
	}
	target := crawl.Target{
		Database:  spec.Database,
		TableName: spec.Table,
		Path:      spec.Path,
		Location:  joinLocation(spec.Location, spec.Path),
	}
	opts := crawl.Options{
		SampleFilesPerFolder: spec.SampleFiles,
		SampleRecordsPerFile: spec.SampleRecords,
		Recrawl:              spec.Recrawl,
		SchemaChange:         spec.SchemaChange,
	}
	res, err := crawl.Crawl(ctx, src, target, catalog.New(catBucket), opts, w.log.With("run", p.RunID, "step", p.Step))
	if errors.Is(err, crawl.ErrSchemaChange) {
		// The data will not change by retrying: fail the step now.
		return fmt.Errorf("crawl %s: %w: %w", target.Location, err, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("crawl %s: %w", target.Location, err)
	}
	_, err = w.orch.Finish(ctx, p.StepRef, workflow.Succeeded, res, nil)
	return err
}

func joinLocation(loc, path string) string {
	if path == "" {
		return loc
	}
	if loc[len(loc)-1] != '/' {
		loc += "/"
	}
	return loc + path
}
