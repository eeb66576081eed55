package job

import (
	"context"
	"fmt"
	"strings"

	"sluice/pipeline/storage"
)

// ScratchRuns lists the runs that have a folder in a job's scratch
// location (<run-id>/ at its top), keeping those whose id starts with
// prefix (a workflow's runs: "<workflow>.").
func ScratchRuns(ctx context.Context, scratch storage.Reader, prefix string) ([]string, error) {
	dirs, err := scratch.ListDirs(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", scratch.Location(), err)
	}
	var runs []string
	for _, d := range dirs {
		if id := strings.TrimSuffix(d, "/"); strings.HasPrefix(id, prefix) {
			runs = append(runs, id)
		}
	}
	return runs, nil
}

// CleanRun deletes what a run left in a job's scratch (every step's
// intermediates) and in its output's staging folder. The run must be over
// for good: it is for runs that were cancelled or whose records are gone.
func CleanRun(ctx context.Context, scratch, out storage.Bucket, runID string) error {
	if err := storage.DeletePrefix(ctx, scratch, runID+"/"); err != nil {
		return fmt.Errorf("clean scratch of run %s: %w", runID, err)
	}
	if err := storage.DeletePrefix(ctx, out, "_staging/"+runID+"/"); err != nil {
		return fmt.Errorf("clean staging of run %s: %w", runID, err)
	}
	return nil
}
