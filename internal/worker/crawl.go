package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/hibiken/asynq"

	"sluice/pipeline/catalog"
	"sluice/pipeline/crawl"
	"sluice/pipeline/fault"
	"sluice/pipeline/gluesync"
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
	if spec.Format == workflow.FormatIceberg {
		sum, err := w.registerIceberg(ctx, wf, step, p.StepRef)
		if err != nil {
			return err
		}
		_, err = w.orch.Finish(ctx, p.StepRef, workflow.Succeeded, sum, nil)
		return err
	}
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
	store := catalog.New(catBucket)
	res, err := crawl.Crawl(ctx, src, target, store, opts, w.logFor(ctx).With("run", p.RunID, "step", p.Step))
	if errors.Is(err, crawl.ErrSchemaChange) || errors.Is(err, crawl.ErrNoData) {
		// The data will not change by retrying: fail the step now.
		return fault.Permanent(fmt.Errorf("crawl %s: %w", target.Location, err))
	}
	if err != nil {
		return fmt.Errorf("crawl %s: %w", target.Location, err)
	}
	summary := crawlSummary{Result: res}
	if g := spec.GlueSync; g != nil && g.Enabled {
		gr, err := syncGlue(ctx, store, g, spec.Database, spec.Table)
		if err != nil {
			return err
		}
		summary.Glue = &gr
	}
	_, err = w.orch.Finish(ctx, p.StepRef, workflow.Succeeded, summary, nil)
	return err
}

// crawlSummary is a crawler step's summary in the run record.
type crawlSummary struct {
	crawl.Result
	Glue *gluesync.Result `json:"glue,omitempty"`
}

// syncGlue copies the crawled table to the AWS Glue Data Catalog. A
// failure is returned, so asynq retries the step (the crawl itself is then
// cheap: nothing new to read).
func syncGlue(ctx context.Context, store *catalog.Store, g *workflow.GlueSyncSpec, db, table string) (gluesync.Result, error) {
	t, err := store.GetTable(ctx, db, table)
	if err != nil {
		return gluesync.Result{}, err
	}
	parts, err := store.ListPartitions(ctx, db, table)
	if err != nil {
		return gluesync.Result{}, err
	}
	var loadOpts []func(*awsconfig.LoadOptions) error
	if g.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(g.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return gluesync.Result{}, fmt.Errorf("glue sync: aws config: %w", err)
	}
	client := glue.NewFromConfig(cfg, func(o *glue.Options) {
		if g.Endpoint != "" {
			o.BaseEndpoint = aws.String(g.Endpoint)
		}
	})
	return gluesync.Sync(ctx, client, t, parts, gluesync.Options{Database: g.Database})
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
