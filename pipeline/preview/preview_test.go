package preview

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"strings"
	"testing"

	"sluice/pipeline/column"
	"sluice/pipeline/expr"
	"sluice/pipeline/mapper"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/transform"
	tt "sluice/pipeline/transform/transformtest"
)

// A preview against a table that exists: the spec's new columns are new
// (derived, renamed), the renamed field is moved, the where's rows are
// counted with an example, a bad line is in the quarantine with its
// example, and the rows come out as the job writes them (a CSV file
// with every column of the table, the old one empty); nothing is
// written to the table.
func TestPreviewAgainstTheTable(t *testing.T) {
	ctx := context.Background()
	in, out := memstore.New(), memstore.New()
	tt.Put(t, in, tt.DayFolder("ios", "2026-10-31")+"a.gz", tt.Gzip(
		tt.Event("m1", "2026-10-31T10:00:00Z", `"type":"track"`, `"properties":{"revenue":19.99}`),
		tt.Event("m2", "2026-10-31T11:00:00Z", `"type":"screen"`),
		`{"messageId": "m3", "timestamp":`,
	))
	plain := transform.DefaultSpec()
	base, _, _, err := schema.Merge(schema.Schema{}, plain, map[string]column.Type{
		"messageId": column.TypeString, "event": column.TypeString, "type": column.TypeString, "userId": column.TypeString,
		"context.device.model": column.TypeString, "context.device.adTrackingEnabled": column.TypeBool, "context.os.name": column.TypeString,
		"properties.revenue": column.TypeDouble,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.NewStore(out).Update(ctx, func(schema.Schema) (schema.Schema, bool, error) { return base, true, nil }); err != nil {
		t.Fatal(err)
	}
	before := len(out.Objects())
	spec := plain
	spec.Where = `type == "track"`
	spec.Derive = []expr.Derive{{Name: "is_purchase", Expression: `properties_revenue > 0`}}
	spec.Rename = map[string]string{"context_device_model": "device_model"}
	res, err := Run(ctx, in, out, spec, tt.Window(t, "2026-10-31", "2026-10-31"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Objects()) != before {
		t.Errorf("the preview wrote to the table: %d objects, %d before", len(out.Objects()), before)
	}
	status := map[string]string{}
	for _, c := range res.Cols {
		status[c.Name] = c.Status
	}
	if status["is_purchase"] != "new derived" || status["device_model"] != "new renamed from context_device_model" || status["event"] != "" {
		t.Errorf("statuses %v", status)
	}
	if res.Schema.Version != base.Version || len(res.Schema.Changes.Moved) != 1 || res.Schema.Changes.Moved[0].To != "device_model" {
		t.Errorf("schema diff %+v", res.Schema)
	}
	if res.Filter.Count != 1 || len(res.Filter.Examples) != 1 || !strings.Contains(res.Filter.Examples[0].Raw, `"m2"`) {
		t.Errorf("filtered %+v", res.Filter)
	}
	if len(res.Quar) != 1 || res.Quar[0].Reason != mapper.ReasonInvalidJSON || len(res.Quar[0].Examples) != 1 || res.Quar[0].Examples[0].Line != 3 {
		t.Errorf("quarantine %+v", res.Quar)
	}
	var buf bytes.Buffer
	if n, err := res.WriteDate(ctx, &buf, "csv", res.Dates()[0], false); err != nil || n != 1 {
		t.Fatalf("WriteDate: %d rows, %v", n, err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("csv %v %v", recs, err)
	}
	row := map[string]string{}
	for i, h := range recs[0] {
		row[h] = recs[1][i]
	}
	if row["message_id"] != "m1" || row["is_purchase"] != "true" || row["device_model"] != "iPhone15,2" || row["context_device_model"] != "" || !slices.Contains(recs[0], "context_device_model") {
		t.Errorf("row %v", row)
	}
}
