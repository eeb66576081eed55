package bookmark

import (
	"context"
	"reflect"
	"testing"

	"sluice/pipeline/civil"
	"sluice/pipeline/storage/filestore"
	"sluice/pipeline/transform"
)

func day(s string) civil.Date {
	d, err := civil.Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

var window = []civil.Date{day("2026-10-30"), day("2026-10-31"), day("2026-11-01")}

// Folders are UTC received days: 1793318400000 is 2026-10-30.
var (
	a = transform.Object{Key: "segment-logs/ios/1793318400000/a.gz", ETag: "1"}
	b = transform.Object{Key: "segment-logs/ios/1793404800000/b.gz", ETag: "1"} // 2026-10-31
	c = transform.Object{Key: "segment-logs/ios/1793491200000/c.gz", ETag: "1"} // 2026-11-01
	n = transform.Object{Key: "segment-logs/ios/1794268800000/n.gz", ETag: "1"} // 2026-11-10
)

func index() map[string]ObjectEntry {
	return map[string]ObjectEntry{
		a.Key: {ETag: "1", Dates: []string{"2026-10-29", "2026-10-30"}},
		b.Key: {ETag: "1", Dates: []string{"2026-10-30", "2026-10-31"}},
		c.Key: {ETag: "1", Dates: []string{"2026-11-01"}},
	}
}

func builtFrom(known map[string]ObjectEntry, objs []transform.Object, spec string) map[string]Build {
	out := map[string]Build{}
	for date, contrib := range Contributors(objs, known) {
		out[date] = Build{Date: date, Fingerprint: Fingerprint(contrib), Spec: spec}
	}
	return out
}

func keys(objs []transform.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

func TestDecide(t *testing.T) {
	t.Parallel()
	all := []transform.Object{a, b, c}
	builds := builtFrom(index(), all, "s1")

	t.Run("nothing changed", func(t *testing.T) {
		d := Decide(window, all, index(), builds, "s1", false, nil)
		if len(d.Rebuild) != 0 || len(d.Objects) != 0 || len(d.Skip) != 3 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("forced", func(t *testing.T) {
		d := Decide(window, all, index(), builds, "s1", true, nil)
		if len(d.Rebuild) != 3 || len(d.Objects) != 3 || d.Rebuild["2026-10-31"] != ReasonForced {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("spec changed", func(t *testing.T) {
		d := Decide(window, all, index(), builds, "s2", false, nil)
		if len(d.Rebuild) != 3 || d.Rebuild["2026-10-30"] != ReasonSpecChanged {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("one object rewritten", func(t *testing.T) {
		changed := c
		changed.ETag = "2"
		d := Decide(window, []transform.Object{a, b, changed}, index(), builds, "s1", false, nil)
		// c is unknown again: it could hold events up to 2026-11-02, so every
		// date is in reach; its old date also lost a known object.
		if d.Rebuild["2026-11-01"] != ReasonInputChanged || len(d.Rebuild) != 3 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("an object deleted", func(t *testing.T) {
		d := Decide(window, []transform.Object{a, c}, index(), builds, "s1", false, nil)
		want := map[string]string{"2026-10-30": ReasonInputChanged, "2026-10-31": ReasonInputChanged}
		if !reflect.DeepEqual(d.Rebuild, want) || !reflect.DeepEqual(keys(d.Objects), []string{a.Key}) {
			t.Fatalf("rebuild %v objects %v", d.Rebuild, keys(d.Objects))
		}
	})
	t.Run("a late object for an old window", func(t *testing.T) {
		// n arrived on 2026-11-10 and the index already knows it holds a
		// late event of 2026-10-31: only that partition changed.
		known := index()
		known[n.Key] = ObjectEntry{ETag: "1", Dates: []string{"2026-10-31", "2026-11-09"}}
		d := Decide(window, []transform.Object{a, b, c, n}, known, builds, "s1", false, nil)
		want := map[string]string{"2026-10-31": ReasonInputChanged}
		if !reflect.DeepEqual(d.Rebuild, want) || !reflect.DeepEqual(keys(d.Objects), []string{b.Key, n.Key}) {
			t.Fatalf("rebuild %v objects %v", d.Rebuild, keys(d.Objects))
		}
	})
	t.Run("a new object not yet indexed", func(t *testing.T) {
		// Received on 2026-10-31: it can hold events up to 2026-11-01, and is
		// read either way.
		fresh := transform.Object{Key: "segment-logs/android/1793404800000/x.gz", ETag: "1"}
		d := Decide(window, []transform.Object{a, b, c, fresh}, index(), builds, "s1", false, nil)
		if len(d.Rebuild) != 3 || d.Rebuild["2026-10-30"] != ReasonNewInput {
			t.Fatalf("%+v", d)
		}
		if !reflect.DeepEqual(keys(d.Objects), []string{fresh.Key, a.Key, b.Key, c.Key}) {
			t.Fatalf("objects %v, want key order", keys(d.Objects))
		}
	})
	t.Run("never built", func(t *testing.T) {
		d := Decide(window, all, index(), nil, "s1", false, nil)
		if d.Rebuild["2026-11-01"] != ReasonNeverBuilt {
			t.Fatalf("%+v", d)
		}
	})
}

func TestStoreRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fb, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(fb, "mobile-user-daily")
	if err := s.RecordObjects(ctx, index()); err != nil {
		t.Fatal(err)
	}
	extra := map[string]ObjectEntry{n.Key: {ETag: "7", Dates: []string{"2026-11-09"}}}
	if err := s.RecordObjects(ctx, extra); err != nil {
		t.Fatal(err)
	}
	got, err := s.Objects(ctx, []string{a.Key, c.Key, n.Key, "segment-logs/ios/1/none.gz"})
	if err != nil {
		t.Fatal(err)
	}
	want := index()
	delete(want, b.Key) // another folder: not asked for
	want[n.Key] = extra[n.Key]
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("objects %v, want %v", got, want)
	}
	if err := s.RecordBuild(ctx, Build{Date: "2026-10-30", Fingerprint: "f", Spec: "s"}); err != nil {
		t.Fatal(err)
	}
	builds, err := s.Builds(ctx, []string{"2026-10-30", "2026-10-31"})
	if err != nil || len(builds) != 1 || builds["2026-10-30"].Fingerprint != "f" {
		t.Fatalf("builds %v err %v", builds, err)
	}
}
