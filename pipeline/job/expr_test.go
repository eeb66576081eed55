package job_test

import (
	"context"
	"strings"
	"testing"

	"sluice/pipeline/column"
	"sluice/pipeline/expr"
	"sluice/pipeline/mapper"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
)

// exprSpec filters, derives and renames as the example does.
func exprSpec() transform.Spec {
	s := testSpec()
	s.Where = `type == "track"`
	s.Derive = []expr.Derive{
		{Name: "is_purchase", Expression: `event == "Order Completed"`},
		{Name: "revenue_cents", Expression: `properties_revenue * 100`, Type: "long"},
		{Name: "hour_utc", Expression: `timestamp.getHours()`},
	}
	s.Rename = map[string]string{"context_device_model": "device_model"}
	return s
}

// where keeps the rows it holds for and counts the others; derive adds
// typed columns (a double rounded into a bigint, null where a field it
// reads is absent); rename names a column; a row whose expression fails
// for another reason is quarantined with expression_error; the books
// balance with the filtered rows.
func TestWhereDeriveRename(t *testing.T) {
	t.Parallel()
	in, out := memstore.New(), memstore.New()
	// m1 and m2 are purchases; m3 is filtered out, m4 has no revenue, m5
	// a revenue that is no number, m6 no type (filtered out: null).
	body := strings.NewReplacer(`"m1","timestamp":"2026-10-31T10:00:00Z","event":"Opened"`, `"m1","timestamp":"2026-10-31T10:00:00Z","event":"Order Completed"`,
		`"m2","timestamp":"2026-10-31T11:00:00Z","event":"Opened"`, `"m2","timestamp":"2026-10-31T11:00:00Z","event":"Order Completed"`)
	lines := []string{
		body.Replace(ev("m1", "2026-10-31T10:00:00Z", `"type":"track"`, `"properties":{"revenue":19.99}`)),
		body.Replace(ev("m2", "2026-10-31T11:00:00Z", `"type":"track"`, `"properties":{"revenue":5}`)),
		ev("m3", "2026-10-31T12:00:00Z", `"type":"screen"`),
		ev("m4", "2026-10-31T13:00:00Z", `"type":"track"`),
		ev("m5", "2026-10-31T14:00:00Z", `"type":"track"`, `"properties":{"revenue":"lots"}`),
		ev("m6", "2026-10-31T15:00:00Z"),
	}
	put(t, in, dayFolder("ios", "2026-10-31")+"a.gz", gz(lines...))
	spec := exprSpec()
	// Fields given back as they are: each row's own values.
	spec.Derive = append(spec.Derive, expr.Derive{Name: "ev", Expression: "event"}, expr.Derive{Name: "rev", Expression: "properties_revenue"},
		expr.Derive{Name: "ty", Expression: `type + "!"`})
	res := runJob(t, newStep(in, memstore.New(), out, spec, window(t, "2026-10-31", "2026-10-31")))
	sum := res.summary
	if !sum.Balanced || sum.FilteredOut != 2 || sum.RowsWritten != 3 || sum.Quarantined[mapper.ReasonExpressionError] != 1 {
		t.Fatalf("summary: filtered %d, rows %d, quarantined %v; %s", sum.FilteredOut, sum.RowsWritten, sum.Quarantined, sum.Reconciliation)
	}
	if !strings.Contains(sum.Reconciliation, "filtered out 2") {
		t.Errorf("reconciliation %q does not name the filtered rows", sum.Reconciliation)
	}
	tb := readPartition(t, out, "2026-10-31")
	for _, c := range []string{"device_model", "is_purchase", "revenue_cents", "hour_utc"} {
		if _, ok := tb.types[c]; !ok {
			t.Errorf("no column %s in %v", c, tb.cols)
		}
	}
	if _, ok := tb.types["context_device_model"]; ok {
		t.Errorf("context_device_model is still there: %v", tb.cols)
	}
	if tb.types["revenue_cents"] != "INT(64,true)" || tb.types["is_purchase"] != "BOOLEAN" || tb.types["hour_utc"] != "INT(64,true)" {
		t.Errorf("types %v", tb.types)
	}
	rows := tb.byID(t)
	for id, want := range map[string]struct {
		purchase bool
		cents    int64 // -1: null
	}{"m1": {true, 1999}, "m2": {true, 500}, "m4": {false, -1}} {
		r := rows[id]
		if r == nil {
			t.Errorf("%s missing", id)
			continue
		}
		if r["is_purchase"].Boolean() != want.purchase {
			t.Errorf("%s: is_purchase %v", id, r["is_purchase"])
		}
		if got := r["revenue_cents"]; want.cents < 0 && !got.IsNull() || want.cents >= 0 && got.Int64() != want.cents {
			t.Errorf("%s: revenue_cents %v, want %d", id, got, want.cents)
		}
		if r["device_model"].String() != "iPhone15,2" {
			t.Errorf("%s: device_model %v", id, r["device_model"])
		}
	}
	for id, want := range map[string]struct {
		ev  string
		rev float64
	}{"m1": {"Order Completed", 19.99}, "m2": {"Order Completed", 5}, "m4": {"Opened", -1}} {
		r := rows[id]
		if r["ev"].String() != want.ev || r["ty"].String() != "track!" || (want.rev < 0) != r["rev"].IsNull() || want.rev >= 0 && r["rev"].Double() != want.rev {
			t.Errorf("%s: ev %v, rev %v, ty %v; want %+v", id, r["ev"], r["rev"], r["ty"], want)
		}
	}
	if rows["m1"]["hour_utc"].Int64() != 10 {
		t.Errorf("hour_utc %v", rows["m1"]["hour_utc"])
	}
	// The quarantine names the expression and CEL's message.
	q := readQuarantine(t, out)
	if len(q) != 1 || q[0].Reason != mapper.ReasonExpressionError || !strings.Contains(q[0].Detail, "derive revenue_cents") || !strings.Contains(q[0].Raw, `"m5"`) {
		t.Errorf("quarantine %+v", q)
	}
	// The schema holds the derived and renamed columns.
	sc, err := schema.NewStore(out).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := sc.Column("revenue_cents"); !ok || c.Type != column.TypeBigint {
		t.Errorf("schema column revenue_cents %+v", c)
	}
	if c, ok := sc.Column("device_model"); !ok || !c.Renamed || len(c.Paths) != 1 || c.Paths[0] != "context.device.model" {
		t.Errorf("schema column device_model %+v", c)
	}
}

// A job without where or derive writes exactly what it wrote before
// expressions existed: the same bytes.
func TestNoExpressionsSameBytes(t *testing.T) {
	t.Parallel()
	in := memstore.New()
	put(t, in, dayFolder("ios", "2026-10-31")+"a.gz", gz(ev("m1", "2026-10-31T10:00:00Z", `"type":"track"`)))
	a, b := memstore.New(), memstore.New()
	runJob(t, newStep(in, memstore.New(), a, testSpec(), window(t, "2026-10-31", "2026-10-31")))
	spec := testSpec()
	spec.Rename = map[string]string{}
	runJob(t, newStep(in, memstore.New(), b, spec, window(t, "2026-10-31", "2026-10-31")))
	fa, fb := partitionFiles(t, a, "2026-10-31"), partitionFiles(t, b, "2026-10-31")
	if len(fa) != 1 || len(fb) != 1 || string(a.Objects()[fa[0]]) != string(b.Objects()[fb[0]]) {
		t.Errorf("files differ: %v %v", fa, fb)
	}
}

// Renaming a column of a table that already has it moves the field to the
// new column from then on; the old column stays for older files, and
// taking the rename out moves it back to its old column.
func TestRenameMovesAndMovesBack(t *testing.T) {
	t.Parallel()
	in, out := memstore.New(), memstore.New()
	put(t, in, dayFolder("ios", "2026-10-31")+"a.gz", gz(ev("m1", "2026-10-31T10:00:00Z")))
	w := window(t, "2026-10-31", "2026-10-31")
	runJob(t, newStep(in, memstore.New(), out, testSpec(), w))
	spec := testSpec()
	spec.Rename = map[string]string{"context_os_name": "os"}
	s := newStep(in, memstore.New(), out, spec, w)
	s.RunID, s.Force = "run-2", true
	runJob(t, s)
	sc, err := schema.NewStore(out).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if old, _ := sc.Column("context_os_name"); len(old.Paths) != 0 || len(sc.Changes.Moved) != 1 {
		t.Fatalf("after the rename: old column %+v, changes %+v", old, sc.Changes)
	}
	if tb := readPartition(t, out, "2026-10-31"); tb.rows[0]["os"].String() != "iOS" {
		t.Errorf("renamed column: %v", tb.rows[0])
	}
	s = newStep(in, memstore.New(), out, testSpec(), w)
	s.RunID, s.Force = "run-3", true
	runJob(t, s)
	sc, err = schema.NewStore(out).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := sc.Column("context_os_name"); len(c.Paths) != 1 {
		t.Errorf("after the rename went: %+v (%+v)", c, sc.Changes)
	}
	if tb := readPartition(t, out, "2026-10-31"); tb.rows[0]["context_os_name"].String() != "iOS" {
		t.Errorf("after the rename went: %v", tb.rows[0])
	}
}
