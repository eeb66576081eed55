package icetable

import (
	"fmt"
	"regexp"
	"time"

	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/workflow"
)

// Catalog types.
const (
	CatalogEmbedded = "embedded" // iceberg-go's SQL catalog on a SQLite file in the output
	CatalogGlue     = "glue"     // the AWS Glue Data Catalog (Athena)
	CatalogREST     = "rest"     // an Iceberg REST catalog (Polaris, Nessie, Lakekeeper, S3 Tables)
)

// Config is a job's Iceberg table: the workflow's `table:` block.
type Config struct {
	// Namespace and Name identify the table in its catalog.
	Namespace string        `yaml:"namespace" json:"namespace"`
	Name      string        `yaml:"name" json:"name"`
	Catalog   CatalogConfig `yaml:"catalog" json:"catalog"`
	// SnapshotMaxAge: snapshots older than this expire at the end of
	// every run that commits, and the files only they referenced are
	// deleted; 0 keeps every snapshot.
	SnapshotMaxAge time.Duration `yaml:"snapshot_max_age" json:"snapshot_max_age,omitempty"`
	// RetainLast snapshots are kept whatever their age (at least 1).
	RetainLast int `yaml:"retain_last" json:"retain_last,omitempty"`
}

// CatalogConfig says which catalog holds the table.
type CatalogConfig struct {
	Type string `yaml:"type" json:"type"` // embedded (default), glue or rest
	// URI is the REST catalog's base URL.
	URI string `yaml:"uri" json:"uri,omitempty"`
	// Warehouse is passed to REST catalogs that host several (S3 Tables'
	// table bucket ARN, Polaris's catalog name).
	Warehouse string `yaml:"warehouse" json:"warehouse,omitempty"`
	// Properties are passed to iceberg-go's catalog as they are (for
	// example "credential", "glue.region", "rest.sigv4-enabled").
	Properties map[string]string `yaml:"properties" json:"properties,omitempty"`
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Validate fills defaults and names the first field that is wrong.
func (c *Config) Validate() error {
	if c.Catalog.Type == "" {
		c.Catalog.Type = CatalogEmbedded
	}
	if c.Namespace == "" {
		c.Namespace = "sluice"
	}
	if !identRE.MatchString(c.Namespace) {
		return fmt.Errorf("table.namespace: %q is not lower-case letters, digits and _", c.Namespace)
	}
	if !identRE.MatchString(c.Name) {
		return fmt.Errorf("table.name: %q is not lower-case letters, digits and _ (required)", c.Name)
	}
	switch c.Catalog.Type {
	case CatalogEmbedded, CatalogGlue:
		if c.Catalog.URI != "" {
			return fmt.Errorf("table.catalog.uri: only a rest catalog takes a uri")
		}
	case CatalogREST:
		if c.Catalog.URI == "" {
			return fmt.Errorf("table.catalog.uri: a rest catalog needs its base URL")
		}
	default:
		return fmt.Errorf("table.catalog.type: %q is not embedded, glue or rest", c.Catalog.Type)
	}
	if c.SnapshotMaxAge < 0 {
		return fmt.Errorf("table.snapshot_max_age: %s is negative", c.SnapshotMaxAge)
	}
	if c.RetainLast < 0 {
		return fmt.Errorf("table.retain_last: %d is negative", c.RetainLast)
	}
	if c.RetainLast == 0 {
		c.RetainLast = 1
	}
	return nil
}

// IOProperties are iceberg-go's file IO settings for the S3 options Sluice
// opens its buckets with, so that Iceberg's metadata and manifests go
// where the data goes, with the same endpoint and credentials.
func IOProperties(o s3store.Options) map[string]string {
	p := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	set("s3.endpoint", o.Endpoint)
	set("s3.region", o.Region)
	set("s3.access-key-id", o.AccessKey)
	set("s3.secret-access-key", o.SecretKey)
	if o.Endpoint != "" || o.PathStyle {
		// A self-hosted endpoint addresses buckets by path.
		p["s3.force-virtual-addressing"] = fmt.Sprint(!o.PathStyle)
	}
	if p["s3.region"] == "" {
		p["s3.region"] = "us-east-1"
	}
	return p
}

// ConfigOf is the Config of a workflow job's table block (format iceberg).
func ConfigOf(t *workflow.TableSpec) Config {
	c := Config{Namespace: t.Namespace, Name: t.Name, SnapshotMaxAge: t.SnapshotMaxAge, RetainLast: t.RetainLast}
	if t.Catalog != nil {
		c.Catalog = CatalogConfig{Type: t.Catalog.Type, URI: t.Catalog.URI, Warehouse: t.Catalog.Warehouse, Properties: t.Catalog.Properties}
	}
	return c
}
