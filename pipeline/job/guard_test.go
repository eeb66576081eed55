package job_test

import (
	"bytes"
	"strings"
	"testing"

	"sluice/pipeline/fault"
	"sluice/pipeline/storage/memstore"
)

// A run whose input is empty or much smaller than what the published
// partitions were built from refuses, permanently, before it changes any
// published file, and names the partitions; AllowShrink lets it through.
func TestShrinkGuard(t *testing.T) {
	t.Parallel()
	in := duplicatedData(t)
	w := window(t, "2026-10-30", "2026-10-31")
	out := memstore.New()
	runJob(t, newStep(in, memstore.New(), out, testSpec(), w))
	published := out.Objects()

	partial := cloneBucket(t, in) // most of the raw logs deleted
	for k := range partial.Objects() {
		if !strings.HasSuffix(k, "part-0.gz") || strings.Contains(k, "android") {
			if err := partial.Delete(t.Context(), k); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name string
		in   *memstore.Bucket
		want string
	}{
		{"empty input", memstore.New(), "holds no objects for the window"},
		{"most input gone", partial, "far fewer rows"},
	} {
		s := newStep(c.in, memstore.New(), out, testSpec(), w)
		s.RunID, s.Force = "run-"+strings.ReplaceAll(c.name, " ", "-"), true
		_, err := tryJob(s)
		if err == nil || !fault.IsPermanent(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a permanent error saying %q", c.name, err, c.want)
			continue
		}
		for _, d := range []string{"2026-10-30", "2026-10-31"} {
			if !strings.Contains(err.Error(), d) {
				t.Errorf("%s: the error does not name %s: %v", c.name, d, err)
			}
		}
		now := out.Objects()
		if len(now) != len(published) {
			t.Errorf("%s: %d objects in the output, %d before", c.name, len(now), len(published))
		}
		for k, v := range published {
			if !bytes.Equal(now[k], v) {
				t.Errorf("%s: %s changed", c.name, k)
			}
		}
	}
	// On purpose: the partitions are emptied.
	s := newStep(memstore.New(), memstore.New(), out, testSpec(), w)
	s.RunID, s.Force, s.AllowShrink = "run-allowed", true, true
	res := runJob(t, s)
	if len(partitionFiles(t, out, "2026-10-30")) != 0 || res.summary.RowsWritten != 0 {
		t.Errorf("allowed shrink: %v left, %d rows written", partitionFiles(t, out, "2026-10-30"), res.summary.RowsWritten)
	}
}
