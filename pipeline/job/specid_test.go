package job

import (
	"os"
	"path/filepath"
	"testing"

	"sluice/pipeline/workflow"
)

// The same folders spelled as relative paths or as file URLs (the demo
// writes the latter, a workflow file the former) are the same job: a
// change of spelling must not rebuild every partition.
func TestSpecIDIgnoresHowLocationsAreSpelled(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel := &workflow.JobSpec{Input: "./sluice-demo/raw", Output: "sluice-demo/mobile_user/"}
	abs := &workflow.JobSpec{Input: "file://" + filepath.Join(wd, "sluice-demo", "raw"), Output: "file://" + filepath.Join(wd, "sluice-demo", "mobile_user")}
	if SpecID(rel) != SpecID(abs) {
		t.Errorf("spec ids differ: %s and %s", SpecID(rel), SpecID(abs))
	}
	s3a, s3b := &workflow.JobSpec{Input: "s3://raw/logs/", Output: "s3://lake"}, &workflow.JobSpec{Input: "s3://raw/logs", Output: "s3://lake/"}
	if SpecID(s3a) != SpecID(s3b) {
		t.Error("s3 locations with and without a trailing slash differ")
	}
	if other := (&workflow.JobSpec{Input: "./sluice-demo/raw2", Output: rel.Output}); SpecID(other) == SpecID(rel) {
		t.Error("different inputs have one spec id")
	}
}
