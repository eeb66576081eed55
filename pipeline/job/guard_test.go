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

	// Most of the raw logs rewritten empty (deleted ones are refused by
	// the vanished-input guard: TestVanishedInputGuard).
	partial := cloneBucket(t, in)
	for k := range partial.Objects() {
		if !strings.HasSuffix(k, "part-0.gz") || strings.Contains(k, "android") {
			put(t, partial, k, gz())
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

// Raw objects that vanished since a partition's last build (a lifecycle
// rule, a wrong prefix, a deletion by hand) used to shrink it in silence
// when the loss was under the row ratio: the next ordinary run rebuilt it
// from what was left, reason "input objects changed". The run now refuses,
// permanently and before any published file changes, naming the objects;
// the dry run shows them; -allow-shrink rebuilds without them.
func TestVanishedInputGuard(t *testing.T) {
	t.Parallel()
	in := duplicatedData(t)
	w := window(t, "2026-10-30", "2026-10-31")
	out := memstore.New()
	runJob(t, newStep(in, memstore.New(), out, testSpec(), w))
	published := out.Objects()

	gone := dayFolder("ios", "2026-10-31") + "part-1.gz" // 1 object of 12
	if err := in.Delete(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	s := newStep(in, memstore.New(), out, testSpec(), w)
	s.RunID = "run-after-deletion"
	dr, err := s.DryRun(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dr.Refused, gone) {
		t.Errorf("the dry run does not refuse naming %s: %q", gone, dr.Refused)
	}
	shown := 0
	for _, p := range dr.Partitions {
		if p.VanishedCount == 1 && len(p.VanishedInputs) == 1 && p.VanishedInputs[0] == gone {
			shown++
		}
	}
	if shown == 0 {
		t.Errorf("no partition of the dry run shows the vanished object: %+v", dr.Partitions)
	}

	_, err = tryJob(s)
	if err == nil || !fault.IsPermanent(err) || !strings.Contains(err.Error(), gone) || !strings.Contains(err.Error(), "no longer holds 1 of them") {
		t.Fatalf("run after a deletion: %v, want a permanent refusal naming %s", err, gone)
	}
	now := out.Objects()
	for k, v := range published {
		if !bytes.Equal(now[k], v) {
			t.Errorf("%s changed by the refused run", k)
		}
	}

	// With consent the partitions are rebuilt without it, and the next
	// run has nothing to refuse.
	s = newStep(in, memstore.New(), out, testSpec(), w)
	s.RunID, s.AllowShrink = "run-allowed", true
	runJob(t, s)
	s = newStep(in, memstore.New(), out, testSpec(), w)
	s.RunID = "run-next"
	if _, err := tryJob(s); err != nil {
		t.Errorf("the run after the consented one: %v", err)
	}
}
