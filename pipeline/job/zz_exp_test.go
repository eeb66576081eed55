package job

import (
	"os"
	"testing"

	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

func TestExpOutput(t *testing.T) {
	dir := os.Getenv("EXP_DIR")
	if dir == "" {
		t.Skip()
	}
	in, _ := filestore.New(os.Getenv("EXP_IN"))
	out, _ := filestore.New(dir)
	spec := transform.DefaultSpec()
	runJob(t, newStep(in, memstore.New(), out, spec, window(t, "2024-03-08", "2024-03-10")))
}
