package icetable

import (
	"fmt"
	"sluice/pipeline/column"

	"github.com/apache/iceberg-go"
)

// DateColumn is the table's partition column: the job's local date of
// the event, yyyy-mm-dd, a string as the Hive table's date partition is.
const DateColumn = "date"

// dateFieldID is the date column's field id (the first column of every
// table this package creates); partitionFieldID is its partition field's.
const (
	dateFieldID      = 1
	partitionFieldID = 1000
)

// Column is one column of Sluice's table schema.
type Column struct {
	Name string
	Type column.Type
}

// icebergType is the Iceberg type of a Sluice column type. Sluice's local
// wall-clock time is Iceberg's timestamp (without zone), its instant
// timestamptz, both in microseconds as the Parquet files hold them.
func icebergType(t column.Type) (iceberg.Type, error) {
	switch t {
	case column.TypeString:
		return iceberg.PrimitiveTypes.String, nil
	case column.TypeBool:
		return iceberg.PrimitiveTypes.Bool, nil
	case column.TypeBigint:
		return iceberg.PrimitiveTypes.Int64, nil
	case column.TypeDouble:
		return iceberg.PrimitiveTypes.Float64, nil
	case column.TypeLocalTime:
		return iceberg.PrimitiveTypes.Timestamp, nil
	case column.TypeUTCTime:
		return iceberg.PrimitiveTypes.TimestampTz, nil
	}
	return nil, fmt.Errorf("column type %s has no Iceberg type", t)
}

// newSchema is the schema of a new table: the date column, then cols in
// table order, every one optional (a row may lack any field), with field
// ids 1, 2, 3... in that order.
func newSchema(cols []Column) (*iceberg.Schema, error) {
	fields := []iceberg.NestedField{{ID: dateFieldID, Name: DateColumn, Type: iceberg.PrimitiveTypes.String, Required: false,
		Doc: "the event's local date in the job's time zone (yyyy-mm-dd); the partition"}}
	for i, c := range cols {
		if c.Name == DateColumn {
			return nil, fmt.Errorf("column %q: the Iceberg table's partition column has that name", c.Name)
		}
		t, err := icebergType(c.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		fields = append(fields, iceberg.NestedField{ID: i + 2, Name: c.Name, Type: t})
	}
	return iceberg.NewSchema(0, fields...), nil
}

// partitionSpec partitions by identity on the date column: one partition
// per local date, as the Hive folders were.
func partitionSpec() iceberg.PartitionSpec {
	return iceberg.NewPartitionSpec(iceberg.PartitionField{
		SourceIDs: []int{dateFieldID}, FieldID: partitionFieldID, Name: DateColumn, Transform: iceberg.IdentityTransform{},
	})
}
