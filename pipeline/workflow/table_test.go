package workflow

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func icebergWorkflow(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "workflows", "mobile-user-iceberg.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestIcebergTableSpec(t *testing.T) {
	base := icebergWorkflow(t)
	w, err := Parse([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	job := w.Step("mobile-user-daily")
	if !job.Job.Iceberg() || job.Job.Table.Name != "mobile" || job.Job.Table.SnapshotMaxAge.Hours() != 168 {
		t.Fatalf("table: %+v", job.Job.Table)
	}
	if !job.Job.Table.Compacts() {
		t.Errorf("the shipped Iceberg workflow does not compact")
	}
	if w2, err := Parse([]byte(strings.Replace(base, "compact: true", "compact: false", 1)), nil); err != nil || w2.Step("mobile-user-daily").Job.Table.Compacts() {
		t.Errorf("compact: false still compacts (%v)", err)
	}
	if got := w.IcebergJobOf(w.Step("segmentlogs-Mobile").Crawler); got != job {
		t.Fatalf("the registration step's job: %v", got)
	}
	for _, c := range []struct{ from, to, want string }{
		{"format: iceberg\n        namespace", "format: icebrg\n        namespace", `job.table.format: must be hive or iceberg, got "icebrg"`},
		{"        name: mobile\n", "", "job.table.name: is required for an Iceberg table"},
		{"name: mobile\n", "name: Mobile\n", `job.table.name: must be lower-case letters, digits and _, got "Mobile"`},
		{"catalog: {type: embedded}", "catalog: {type: rest}", "job.table.catalog.uri: is required for a rest catalog"},
		{"catalog: {type: embedded}", "catalog: {type: hive}", `job.table.catalog.type: must be embedded, glue or rest, got "hive"`},
		{"snapshot_max_age: 168h", "snapshot_max_age: -1h", "job.table.snapshot_max_age: must not be negative"},
		{"format: iceberg\n        namespace: segmentlogs\n        name: mobile\n", "format: hive\n", "job.table.format: hive folders take no namespace, name, catalog, snapshot_max_age, retain_last or compact"},
		{"compact: true", "compact: sometimes", "cannot unmarshal !!str `sometimes` into bool"},
		{"      location: ${SLUICE_OUTPUT:-./sluice-data/mobile_user}_iceberg\n      path", "      location: ${SLUICE_OUTPUT:-./sluice-data/mobile_user}\n      path",
			"crawler.format: iceberg: no job step of this workflow writes an Iceberg table"},
	} {
		raw := strings.Replace(base, c.from, c.to, 1)
		if raw == base {
			t.Fatalf("%q is not in the workflow", c.from)
		}
		_, err := Parse([]byte(raw), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q -> %q: error %v, want %q", c.from, c.to, err, c.want)
		}
	}
}
