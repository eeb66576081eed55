package parquet

import (
	"fmt"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/format"
)

// Type is a column's type as Sluice writes it.
type Type uint8

const (
	Bool           Type = iota + 1 // BOOLEAN
	Int64                          // INT64 (signed 64-bit integer)
	Double                         // DOUBLE
	String                         // BYTE_ARRAY annotated STRING
	TimestampLocal                 // INT64 TIMESTAMP(MICROS, not adjusted to UTC): a wall-clock time
	TimestampUTC                   // INT64 TIMESTAMP(MICROS, adjusted to UTC): an instant
)

func (t Type) String() string {
	switch t {
	case Bool:
		return "boolean"
	case Int64:
		return "int64"
	case Double:
		return "double"
	case String:
		return "string"
	case TimestampLocal:
		return "timestamp_local"
	case TimestampUTC:
		return "timestamp_utc"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// physical is the Parquet physical type of t.
func (t Type) physical() format.Type {
	switch t {
	case Bool:
		return format.Boolean
	case Double:
		return format.Double
	case String:
		return format.ByteArray
	}
	return format.Int64
}

// node is parquet-go's schema node of t, whose logical and converted
// types the footer carries: the same annotations parquet-go's own writer
// gives (and Sluice's files had before this package).
func (t Type) node() pq.Node {
	switch t {
	case Bool:
		return pq.Leaf(pq.BooleanType)
	case Int64:
		return pq.Int(64)
	case Double:
		return pq.Leaf(pq.DoubleType)
	case TimestampLocal:
		return pq.TimestampAdjusted(pq.Microsecond, false)
	case TimestampUTC:
		return pq.TimestampAdjusted(pq.Microsecond, true)
	}
	return pq.String()
}

// Column describes one column of a file. Every column is optional (null
// where a row has no value), at the top level of the schema.
type Column struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
	// FieldID, when not 0, is the column's field id in the schema
	// (Apache Iceberg identifies columns by it).
	FieldID int32 `json:"field_id,omitempty"`
}

// SchemaName is the name of the schema's root.
const SchemaName = "event"

// schemaElements is the footer's flattened schema of cols: the root, then
// one optional leaf per column.
func schemaElements(cols []Column) []format.SchemaElement {
	out := make([]format.SchemaElement, 0, len(cols)+1)
	root := format.SchemaElement{Name: SchemaName}
	root.NumChildren.Set(int32(len(cols)))
	out = append(out, root)
	for _, c := range cols {
		t := c.Type.node().Type()
		e := format.SchemaElement{Name: c.Name, FieldID: c.FieldID}
		e.Type.Set(c.Type.physical())
		e.RepetitionType.Set(format.Optional)
		if lt := t.LogicalType(); lt != nil {
			e.LogicalType = *lt
		}
		if ct := t.ConvertedType(); ct != nil {
			e.ConvertedType.Set(*ct)
		}
		out = append(out, e)
	}
	return out
}

// Codec names a compression codec: snappy, zstd, gzip or none.
func Codec(name string) (compress.Codec, error) {
	switch name {
	case "", "snappy":
		// parquet-go's SNAPPY is klauspost's S2 writing snappy blocks at
		// its "better" level: with dictionary pages it measured 6 %
		// smaller files than the fastest level for 2-3 % of the job's
		// time, and bytes are what Athena bills (docs/BENCHMARKS.md).
		return &pq.Snappy, nil
	case "zstd":
		return &pq.Zstd, nil
	case "gzip":
		return &pq.Gzip, nil
	case "none":
		return &pq.Uncompressed, nil
	}
	return nil, fmt.Errorf("compression %q is not snappy, zstd, gzip or none", name)
}
