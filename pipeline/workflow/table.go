package workflow

import (
	"fmt"
	"regexp"
	"time"

	"sluice/pipeline/storage"
)

// Table formats of a job's output.
const (
	FormatHive    = "hive"    // partition folders (year=/month=/date=), Sluice's own commit; the default
	FormatIceberg = "iceberg" // an Apache Iceberg table: one snapshot per run
)

// Iceberg catalog types.
const (
	CatalogEmbedded = "embedded"
	CatalogGlue     = "glue"
	CatalogREST     = "rest"
)

// TableSpec is what table a job's output is (the job's `table:` block).
// Without one, or with format hive, the output is Hive folders.
type TableSpec struct {
	Format string `yaml:"format"`
	// Namespace and Name identify an Iceberg table in its catalog
	// (namespace defaults to sluice).
	Namespace string            `yaml:"namespace,omitempty"`
	Name      string            `yaml:"name,omitempty"`
	Catalog   *TableCatalogSpec `yaml:"catalog,omitempty"`
	// SnapshotMaxAge: older snapshots expire, and the files only they
	// referenced are deleted, when the table's registration step runs;
	// 0 (the default) keeps every snapshot.
	SnapshotMaxAge time.Duration `yaml:"snapshot_max_age,omitempty"`
	// RetainLast snapshots are kept whatever their age (default 1).
	RetainLast int `yaml:"retain_last,omitempty"`
	// Compact: the registration step joins the small files of the
	// partitions the run committed (default true; false leaves them).
	Compact *bool `yaml:"compact,omitempty"`
}

// Compacts tells whether the table's registration step joins small
// files.
func (t *TableSpec) Compacts() bool { return t.Compact == nil || *t.Compact }

// TableCatalogSpec is the catalog of an Iceberg table.
type TableCatalogSpec struct {
	Type       string            `yaml:"type"` // embedded (default), glue or rest
	URI        string            `yaml:"uri,omitempty"`
	Warehouse  string            `yaml:"warehouse,omitempty"`
	Properties map[string]string `yaml:"properties,omitempty"`
}

// Iceberg tells whether the job writes an Iceberg table.
func (j *JobSpec) Iceberg() bool { return j.Table != nil && j.Table.Format == FormatIceberg }

var tableIdentRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// validate reports what is wrong, by field below the table block.
func (t *TableSpec) validate() []fieldError {
	var errs []fieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldError{field, fmt.Sprintf(format, args...)})
	}
	switch t.Format {
	case FormatHive:
		if t.Name != "" || t.Namespace != "" || t.Catalog != nil || t.SnapshotMaxAge != 0 || t.RetainLast != 0 || t.Compact != nil {
			bad("format", "hive folders take no namespace, name, catalog, snapshot_max_age, retain_last or compact (they are Iceberg's)")
		}
		return errs
	case FormatIceberg:
	case "":
		bad("format", "is required: hive or iceberg")
		return errs
	default:
		bad("format", "must be hive or iceberg, got %q", t.Format)
		return errs
	}
	if t.Name == "" {
		bad("name", "is required for an Iceberg table")
	} else if !tableIdentRE.MatchString(t.Name) {
		bad("name", "must be lower-case letters, digits and _, got %q", t.Name)
	}
	if t.Namespace != "" && !tableIdentRE.MatchString(t.Namespace) {
		bad("namespace", "must be lower-case letters, digits and _, got %q", t.Namespace)
	}
	if t.SnapshotMaxAge < 0 {
		bad("snapshot_max_age", "must not be negative, got %s", t.SnapshotMaxAge)
	}
	if t.RetainLast < 0 {
		bad("retain_last", "must not be negative, got %d", t.RetainLast)
	}
	if c := t.Catalog; c != nil {
		switch c.Type {
		case "", CatalogEmbedded, CatalogGlue:
			if c.URI != "" {
				bad("catalog.uri", "only a rest catalog takes a uri")
			}
		case CatalogREST:
			if c.URI == "" {
				bad("catalog.uri", "is required for a rest catalog")
			}
		default:
			bad("catalog.type", "must be embedded, glue or rest, got %q", c.Type)
		}
	}
	return errs
}

// icebergJobOf is the job step of w whose Iceberg table is at location (a
// registration step's crawler location), or nil.
func (w *Workflow) icebergJobOf(location string) *StepSpec {
	loc := storage.CanonicalLocation(location)
	for i := range w.Steps {
		s := &w.Steps[i]
		if s.Job != nil && s.Job.Iceberg() && storage.CanonicalLocation(s.Job.Output) == loc {
			return s
		}
	}
	return nil
}

// IcebergJobOf is the job step whose Iceberg table a crawler step with
// format iceberg registers: the job whose output is its location.
func (w *Workflow) IcebergJobOf(crawler *CrawlerSpec) *StepSpec {
	if crawler == nil || crawler.Format != FormatIceberg {
		return nil
	}
	return w.icebergJobOf(crawler.Location)
}
