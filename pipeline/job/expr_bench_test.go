package job_test

import (
	"testing"

	"sluice/pipeline/expr"
	"sluice/pipeline/storage/memstore"
)

// BenchmarkExpressions is BenchmarkJob/parquet without expressions and
// with one filter (that keeps every row, so both write the same rows) and
// three derived columns: what expressions cost the whole job.
func BenchmarkExpressions(b *testing.B) {
	for _, c := range []struct {
		name   string
		where  string
		derive []expr.Derive
	}{
		{name: "none"},
		{name: "filter-derive", where: `type != "test"`, derive: []expr.Derive{
			{Name: "is_purchase", Expression: `event == "Order Completed"`},
			{Name: "revenue_cents", Expression: `properties_revenue * 100`, Type: "long"},
			{Name: "device", Expression: `context_device_manufacturer + " " + context_device_model`},
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			in, w, sum := benchInput(b, 20000)
			spec := benchSpec()
			spec.Where, spec.Derive = c.where, c.derive
			b.SetBytes(sum.Bytes)
			b.ReportAllocs()
			b.ResetTimer()
			var rows int64
			for b.Loop() {
				res, err := tryJob(newStep(in, memstore.New(), memstore.New(), spec, w))
				if err != nil {
					b.Fatal(err)
				}
				rows = res.summary.RowsWritten
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
