package job_test

import (
	"strings"
	"testing"

	"sluice/pipeline/bookmark"
	"sluice/pipeline/storage/memstore"
)

// A dry run answers what the real plan then does, and writes nothing: first
// every partition is never built; after a run, none changed; with one new
// input object its dates have new input; forced, all are.
func TestDryRunAnswersWhatThePlanDoes(t *testing.T) {
	t.Parallel()
	in := memstore.New()
	testData(t, in)
	w := window(t, "2026-10-29", "2026-10-31")
	out, scratch := memstore.New(), memstore.New()
	s := newStep(in, scratch, out, testSpec(), w)
	dr, err := s.DryRun(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(scratch.Objects()) != 0 || len(out.Objects()) != 0 {
		t.Fatalf("the dry run wrote: scratch %d, output %d objects", len(scratch.Objects()), len(out.Objects()))
	}
	if len(dr.Partitions) != 3 || dr.InputObjects != 6 || dr.InputBytes == 0 || dr.MapTasks == 0 || dr.Files != 3 {
		t.Fatalf("first dry run: %+v", dr)
	}
	for _, p := range dr.Partitions {
		if !p.Rebuild || p.Reason != bookmark.ReasonNeverBuilt || p.LastBuild != nil {
			t.Errorf("first dry run, %s: %+v", p.Date, p)
		}
	}
	res := runJob(t, s)
	if res.shards != dr.MapTasks {
		t.Errorf("the run cut %d shards, the dry run said %d", res.shards, dr.MapTasks)
	}

	s2 := newStep(in, memstore.New(), out, testSpec(), w)
	s2.RunID = "run-2"
	dr, err = s2.DryRun(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dr.Partitions {
		if p.Rebuild || p.Reason != "unchanged" || p.LastBuild == nil || p.LastBuild.RunID != "run-test" || p.LastBuild.Rows == 0 {
			t.Errorf("dry run after the run, %s: %+v", p.Date, p)
		}
	}
	if dr.InputObjects != 0 || dr.MapTasks != 0 {
		t.Errorf("nothing to read, yet %d objects in %d tasks", dr.InputObjects, dr.MapTasks)
	}

	put(t, in, dayFolder("ios", "2026-10-31")+"late.gz", gz(ev("late-1", "2026-10-31T10:00:00Z")))
	dr, _ = s2.DryRun(t.Context())
	if p := dr.Partitions[2]; !p.Rebuild || p.Reason != bookmark.ReasonNewInput {
		t.Errorf("with a new object, %s: %+v", p.Date, p)
	}
	s2.Force = true
	dr, _ = s2.DryRun(t.Context())
	for _, p := range dr.Partitions {
		if !p.Rebuild || p.Reason != bookmark.ReasonForced {
			t.Errorf("forced, %s: %+v", p.Date, p)
		}
	}

	// An empty input with published partitions: the plan would refuse.
	s3 := newStep(memstore.New(), memstore.New(), out, testSpec(), w)
	if dr, err := s3.DryRun(t.Context()); err != nil || dr.Refused == "" {
		t.Errorf("empty input: refused %q, err %v", dr.Refused, err)
	}
}

// A dry run over an input with no objects for the window says so, instead
// of announcing rebuilds from nothing.
func TestDryRunWarnsOfAnEmptyInput(t *testing.T) {
	t.Parallel()
	s := newStep(memstore.New(), memstore.New(), memstore.New(), testSpec(), window(t, "2026-10-29", "2026-10-31"))
	dr, err := s.DryRun(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if dr.InputObjects != 0 || !strings.Contains(dr.Warning, "no input objects in mem://") || !strings.Contains(dr.Warning, "segment-logs/ios/") {
		t.Errorf("dry run of an empty input: %+v", dr)
	}
}
