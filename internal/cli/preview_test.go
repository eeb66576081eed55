package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage/filestore"
)

// exprWorkflow is a workflow over folders of dir whose job filters,
// derives and renames.
func exprWorkflow(t *testing.T, dir string) string {
	t.Helper()
	body := `name: expr
catalog: file://` + dir + `/catalog
steps:
  - name: start
    trigger: {type: ON_DEMAND, actions: [daily]}
  - name: daily
    job:
      input: file://` + dir + `/raw
      output: file://` + dir + `/out
      scratch: file://` + dir + `/scratch
      transform:
        where: 'type == "track"'
        derive:
          - {name: is_purchase, expression: 'event == "Order Completed"'}
          - {name: revenue_cents, expression: 'properties_revenue * 100', type: long}
        rename: {context_device_model: device_model}
`
	file := filepath.Join(dir, "expr.yaml")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// preview runs the job on a sample of the real input, in process: the
// rows it shows are filtered, derived and renamed as the spec says, the
// books of the sample balance, -out writes a Parquet file with the
// derived columns, and nothing is written to the table.
func TestPreviewShowsWhatTheJobWouldWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw, err := filestore.New(filepath.Join(dir, "raw"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 300
	ctx := context.Background()
	if _, err := segmentgen.Generate(ctx, raw, cfg); err != nil {
		t.Fatal(err)
	}
	file := exprWorkflow(t, dir)
	day := cfg.Start.AddDate(0, 0, 1).Format("2006-01-02")
	var out bytes.Buffer
	if err := Main(ctx, []string{"preview", "-workflows", file, "-workflow", "expr", "-start", day, "-o", "json", "-out", filepath.Join(dir, "sample.parquet")}, &out); err != nil {
		t.Fatalf("preview: %v\n%s", err, out.String())
	}
	var res struct {
		Stats struct {
			LinesRead     int64            `json:"lines_read"`
			Rows          map[string]int64 `json:"rows"`
			OutsideWindow int64            `json:"outside_window"`
			FilteredOut   int64            `json:"filtered_out"`
			Quarantined   map[string]int64 `json:"quarantined"`
		} `json:"stats"`
		Columns []struct{ Name, Type, Status string } `json:"columns"`
		Rows    []map[string]any                      `json:"rows"`
		Written []string                              `json:"written"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	st := res.Stats
	var rows, quarantined int64
	for _, n := range st.Rows {
		rows += n
	}
	for _, n := range st.Quarantined {
		quarantined += n
	}
	if st.LinesRead == 0 || st.FilteredOut == 0 || rows+st.FilteredOut+st.OutsideWindow+quarantined != st.LinesRead {
		t.Errorf("the sample's books: %+v", st)
	}
	if len(res.Rows) == 0 || int64(len(res.Rows)) > rows {
		t.Fatalf("%d rows shown of %d", len(res.Rows), rows)
	}
	purchases := 0
	for _, r := range res.Rows {
		if r["type"] != "track" {
			t.Errorf("row of type %v kept", r["type"])
		}
		if _, ok := r["context_device_model"]; ok || r["device_model"] == nil {
			t.Errorf("not renamed: %v", r)
		}
		if r["is_purchase"] != (r["event"] == "Order Completed") {
			t.Errorf("is_purchase %v for event %v", r["is_purchase"], r["event"])
		}
		if rev, ok := r["properties_revenue"].(float64); ok {
			purchases++
			if cents, _ := r["revenue_cents"].(float64); cents != math.Round(rev*100) {
				t.Errorf("revenue_cents %v for revenue %v", r["revenue_cents"], rev)
			}
		} else if r["revenue_cents"] != nil {
			t.Errorf("revenue_cents %v without a revenue", r["revenue_cents"])
		}
	}
	if purchases == 0 {
		t.Error("no row with a revenue in the sample")
	}
	if len(res.Written) != 1 {
		t.Fatalf("written %v", res.Written)
	}
	f, err := os.Open(res.Written[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"is_purchase", "revenue_cents", "device_model"} {
		if _, ok := pf.Schema().Lookup(c); !ok {
			t.Errorf("the Parquet file lacks %s", c)
		}
	}
	if pf.NumRows() != int64(len(res.Rows)) {
		t.Errorf("the file has %d rows, the preview showed %d", pf.NumRows(), len(res.Rows))
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("preview wrote to the table's location: %v", err)
	}
	// The text form names the derived columns and the filter.
	out.Reset()
	if err := Main(ctx, []string{"preview", "-workflows", file, "-workflow", "expr", "-start", day}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"is_purchase", "boolean", "derived", "revenue_cents", "bigint", "device_model", "renamed from context_device_model",
		`filtered out by where (type == "track")`, "nothing written"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("preview lacks %q:\n%s", want, out.String())
		}
	}
}
