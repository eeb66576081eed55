package schema_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"sluice/pipeline/column"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

var (
	str    = column.TypeString
	bigint = column.TypeBigint
	double = column.TypeDouble
	boolT  = column.TypeBool
)

func names(s schema.Schema) []string {
	var out []string
	for _, c := range s.Columns {
		out = append(out, c.Name+":"+c.Type.String())
	}
	return out
}

func TestJoin(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ a, b, want column.Type }{
		{bigint, bigint, bigint}, {bigint, double, double}, {double, bigint, double},
		{bigint, str, str}, {boolT, bigint, str}, {boolT, boolT, boolT}, {double, str, str},
	} {
		if got := schema.Join(c.a, c.b); got != c.want {
			t.Errorf("Join(%s, %s) = %s, want %s", c.a, c.b, got, c.want)
		}
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	spec := transform.DefaultSpec()
	v1, ch, _, err := schema.Merge(schema.Schema{}, spec, map[string]column.Type{"properties.score": bigint, "event": str})
	if err != nil || v1.Version != 1 || v1.Converted != 1 {
		t.Fatalf("v1 %+v %v", v1, err)
	}
	if want := []string{"event:string", "properties_score:bigint", "timestamp:timestamp_local", "timestamp_utc:timestamp_utc"}; !slices.Equal(names(v1), want) {
		t.Errorf("v1 columns %v, want %v", names(v1), want)
	}
	if len(ch.Added) != 4 {
		t.Errorf("v1 added %v", ch.Added)
	}
	// The same columns again: no new version.
	same, ch, _, _ := schema.Merge(v1, spec, map[string]column.Type{"properties.score": bigint})
	if !ch.Empty() || same.Version != 1 {
		t.Errorf("unchanged run made %+v", ch)
	}
	// Wider data and a new field: widened in place, appended at the end;
	// a field whose natural name is taken gets a suffix, not the column.
	v2, ch, coll, err := schema.Merge(v1, spec, map[string]column.Type{"properties.score": double, "properties_score": str, "a.z": boolT})
	if err != nil || v2.Version != 2 || v2.Converted != 1 {
		t.Fatalf("v2 %+v %v", v2, err)
	}
	if want := []string{"event:string", "properties_score:double", "timestamp:timestamp_local", "timestamp_utc:timestamp_utc", "a_z:boolean", "properties_score_2:string"}; !slices.Equal(names(v2), want) {
		t.Errorf("v2 columns %v, want %v", names(v2), want)
	}
	if len(ch.Widened) != 1 || ch.Widened[0] != (schema.Widening{Column: "properties_score", From: bigint, To: double}) || len(coll) != 1 {
		t.Errorf("v2 changes %+v collisions %+v", ch, coll)
	}
	// Narrower data never narrows.
	v3, ch, _, _ := schema.Merge(v2, spec, map[string]column.Type{"properties.score": bigint})
	if !ch.Empty() || v3.Types()["properties_score"] != double {
		t.Errorf("narrower data changed %+v", ch)
	}
	// A pin may widen, never narrow.
	spec.Columns = map[string]column.Type{"properties.score": str}
	if v, ch, _, err := schema.Merge(v2, spec, map[string]column.Type{"properties.score": str}); err != nil || v.Types()["properties_score"] != str || len(ch.Widened) != 1 {
		t.Errorf("widening pin: %v %+v", err, ch)
	}
	spec.Columns = map[string]column.Type{"properties.score": bigint}
	if _, _, _, err := schema.Merge(v2, spec, map[string]column.Type{"properties.score": bigint}); err == nil {
		t.Error("narrowing pin accepted")
	}
}

// Two runs widening at once both land: each update applies to the other's
// version, and the history has one document per version.
func TestStoreConcurrentUpdates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := schema.NewStore(memstore.New())
	spec := transform.DefaultSpec()
	var wg sync.WaitGroup
	for _, path := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.Update(ctx, func(cur schema.Schema) (schema.Schema, bool, error) {
				next, ch, _, err := schema.Merge(cur, spec, map[string]column.Type{path: bigint})
				return next, !ch.Empty(), err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	cur, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		if _, ok := cur.Column(n); !ok {
			t.Errorf("column %s lost: %v", n, names(cur))
		}
	}
	hist, err := st.History(ctx)
	if err != nil || len(hist) != cur.Version || cur.Version != 4 {
		t.Fatalf("version %d, %d history documents, err %v", cur.Version, len(hist), err)
	}
	for i, h := range hist {
		if h.Version != i+1 {
			t.Errorf("history[%d] is version %d", i, h.Version)
		}
	}
}
