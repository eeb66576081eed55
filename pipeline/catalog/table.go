package catalog

import (
	"maps"
	"slices"
	"time"
)

// Database groups tables.
type Database struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Column is a named, typed column (or struct field).
type Column struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Table is one catalog table. Version is assigned by the Store: it starts at
// 1 and increases on every schema change (see Table.SameSchema).
type Table struct {
	Database      string     `json:"database"`
	Name          string     `json:"name"`
	Location      string     `json:"location"`    // URL of the data root, e.g. s3://b/segment-logs/ios/
	Format        string     `json:"format"`      // json | parquet | csv
	Compression   string     `json:"compression"` // gzip | none | snappy | zstd ...
	Columns       []Column   `json:"columns"`
	PartitionKeys []Column   `json:"partition_keys,omitempty"`
	Version       int        `json:"version"`
	UpdatedAt     time.Time  `json:"updated_at"`
	Conflicts     []Conflict `json:"conflicts,omitempty"`
	// Properties are table properties the crawler found, printed in the
	// DDL's TBLPROPERTIES and sent to Glue, e.g. skip.header.line.count=1
	// for a CSV table whose files start with a header row.
	Properties map[string]string `json:"properties,omitempty"`
}

// Conflict records values of one field that did not agree on a type and
// how the catalog resolved them, instead of failing the crawl.
type Conflict struct {
	Path     string   `json:"path"`          // dotted field path; "[]" marks array elements
	Types    []string `json:"types"`         // the types seen, in order of appearance
	Resolved string   `json:"resolved"`      // the type written to the catalog
	Key      string   `json:"key,omitempty"` // an object in which the disagreement was seen
	Widened  bool     `json:"widened,omitempty"`
}

// Partition is one partition of a table: one value per partition key.
type Partition struct {
	Values   []string `json:"values"`
	Location string   `json:"location"`
	Files    int      `json:"files"`
	Bytes    int64    `json:"bytes"`
	Rows     int64    `json:"rows,omitempty"` // 0 when unknown
	Missing  bool     `json:"missing,omitempty"`
	// Fingerprint is a hash of the folder's listing (keys, sizes, ETags) when
	// it was last crawled; an incremental crawl re-reads a folder only when
	// its fingerprint changed.
	Fingerprint string    `json:"fingerprint,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// QualifiedName is "db.table".
func (t Table) QualifiedName() string { return t.Database + "." + t.Name }

// SameSchema reports whether t and o have the same columns, partition keys,
// format and compression: everything whose change makes a new Version.
func (t Table) SameSchema(o Table) bool {
	return t.Format == o.Format && t.Compression == o.Compression &&
		slices.EqualFunc(t.Columns, o.Columns, columnEqual) &&
		slices.EqualFunc(t.PartitionKeys, o.PartitionKeys, columnEqual)
}

func columnEqual(a, b Column) bool { return a.Name == b.Name && a.Type.Equal(b.Type) }

func (t Table) sameMetadata(o Table) bool {
	return t.Location == o.Location && maps.Equal(t.Properties, o.Properties) && slices.EqualFunc(t.Conflicts, o.Conflicts, func(a, b Conflict) bool {
		return a.Path == b.Path && a.Resolved == b.Resolved && a.Key == b.Key &&
			a.Widened == b.Widened && slices.Equal(a.Types, b.Types)
	})
}

// Column returns the column called name, if any.
func (t Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Same reports whether p and o are the same document apart from UpdatedAt.
func (p Partition) Same(o Partition) bool {
	return slices.Equal(p.Values, o.Values) && p.Location == o.Location && p.Files == o.Files &&
		p.Bytes == o.Bytes && p.Rows == o.Rows && p.Missing == o.Missing && p.Fingerprint == o.Fingerprint
}
