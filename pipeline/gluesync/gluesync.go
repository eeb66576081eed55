package gluesync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/glue/types"

	"sluice/pipeline/catalog"
)

// MaxBatch is the most partitions Glue's BatchCreatePartition takes.
const MaxBatch = 100

// API is the part of *glue.Client that Sync uses.
type API interface {
	GetTable(ctx context.Context, in *glue.GetTableInput, opts ...func(*glue.Options)) (*glue.GetTableOutput, error)
	CreateTable(ctx context.Context, in *glue.CreateTableInput, opts ...func(*glue.Options)) (*glue.CreateTableOutput, error)
	UpdateTable(ctx context.Context, in *glue.UpdateTableInput, opts ...func(*glue.Options)) (*glue.UpdateTableOutput, error)
	BatchCreatePartition(ctx context.Context, in *glue.BatchCreatePartitionInput, opts ...func(*glue.Options)) (*glue.BatchCreatePartitionOutput, error)
}

var _ API = (*glue.Client)(nil)

// Options of a sync.
type Options struct {
	// Database in Glue; empty means the table's own database.
	Database string
	// MapLocation rewrites location prefixes to s3:// URLs, as for DDL.
	MapLocation map[string]string
}

// Result says what a sync did; it goes into the crawler step's summary.
type Result struct {
	Table             string `json:"table"`  // database.table in Glue
	Action            string `json:"action"` // created | updated | unchanged
	PartitionsCreated int    `json:"partitions_created"`
	PartitionsExisted int    `json:"partitions_existed"`
	Calls             int    `json:"calls"` // Glue API calls made
}

// Sync makes Glue's copy of t match t, and adds its partitions.
func Sync(ctx context.Context, api API, t catalog.Table, parts []catalog.Partition, o Options) (Result, error) {
	db := o.Database
	if db == "" {
		db = t.Database
	}
	res := Result{Table: db + "." + t.Name}
	ddl := catalog.DDLOptions{MapLocation: o.MapLocation}
	in, sd, err := tableInput(t, ddl)
	if err != nil {
		return res, fmt.Errorf("glue sync %s: %w", res.Table, err)
	}

	res.Calls++
	cur, err := api.GetTable(ctx, &glue.GetTableInput{DatabaseName: &db, Name: &t.Name})
	var notFound *types.EntityNotFoundException
	switch {
	case errors.As(err, &notFound):
		res.Calls++
		if _, err := api.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: &db, TableInput: in}); err != nil {
			return res, fmt.Errorf("glue sync %s: create table: %w", res.Table, err)
		}
		res.Action = "created"
	case err != nil:
		return res, fmt.Errorf("glue sync %s: get table: %w", res.Table, err)
	case sameTable(cur.Table, in):
		res.Action = "unchanged"
	default:
		res.Calls++
		if _, err := api.UpdateTable(ctx, &glue.UpdateTableInput{DatabaseName: &db, TableInput: in}); err != nil {
			return res, fmt.Errorf("glue sync %s: update table: %w", res.Table, err)
		}
		res.Action = "updated"
	}

	var inputs []types.PartitionInput
	for _, p := range parts {
		if p.Missing {
			continue
		}
		loc, err := catalog.MapS3Location(p.Location, o.MapLocation)
		if err != nil {
			return res, fmt.Errorf("glue sync %s: %w", res.Table, err)
		}
		psd := *sd
		psd.Location = aws.String(loc)
		inputs = append(inputs, types.PartitionInput{Values: p.Values, StorageDescriptor: &psd})
	}
	for batch := range slices.Chunk(inputs, MaxBatch) {
		res.Calls++
		out, err := api.BatchCreatePartition(ctx, &glue.BatchCreatePartitionInput{
			DatabaseName: &db, TableName: &t.Name, PartitionInputList: batch,
		})
		if err != nil {
			return res, fmt.Errorf("glue sync %s: batch create partition: %w", res.Table, err)
		}
		failed := 0
		for _, e := range out.Errors {
			if e.ErrorDetail != nil && aws.ToString(e.ErrorDetail.ErrorCode) == "AlreadyExistsException" {
				res.PartitionsExisted++
				continue
			}
			failed++
			if failed == 1 {
				err = fmt.Errorf("glue sync %s: partition %v: %s: %s", res.Table, e.PartitionValues,
					aws.ToString(e.ErrorDetail.ErrorCode), aws.ToString(e.ErrorDetail.ErrorMessage))
			}
		}
		res.PartitionsCreated += len(batch) - len(out.Errors)
		if err != nil {
			return res, fmt.Errorf("%w (and %d more failed)", err, failed-1)
		}
	}
	return res, nil
}

// tableInput is t as Glue's TableInput, and its StorageDescriptor (which
// partitions copy, with their own location).
func tableInput(t catalog.Table, ddl catalog.DDLOptions) (*types.TableInput, *types.StorageDescriptor, error) {
	st, err := catalog.StorageOf(t)
	if err != nil {
		return nil, nil, err
	}
	loc, err := catalog.MapS3Location(strings.TrimRight(t.Location, "/")+"/", ddl.MapLocation)
	if err != nil {
		return nil, nil, err
	}
	sd := &types.StorageDescriptor{
		Columns:      glueColumns(catalog.HiveColumns(t)),
		Location:     aws.String(loc),
		InputFormat:  aws.String(st.InputFormat),
		OutputFormat: aws.String(st.OutputFormat),
		Compressed:   t.Compression != "" && t.Compression != "none",
		SerdeInfo:    &types.SerDeInfo{SerializationLibrary: aws.String(st.SerDe), Parameters: st.SerDeParams},
	}
	params := maps.Clone(st.Params)
	params["EXTERNAL"] = "TRUE"
	params["sluice_version"] = fmt.Sprint(t.Version)
	var keys []catalog.Column
	for _, k := range t.PartitionKeys {
		keys = append(keys, catalog.Column{Name: k.Name, Type: catalog.HiveType(k.Type)})
	}
	return &types.TableInput{
		Name:              aws.String(t.Name),
		TableType:         aws.String("EXTERNAL_TABLE"),
		Parameters:        params,
		PartitionKeys:     glueColumns(keys),
		StorageDescriptor: sd,
	}, sd, nil
}

func glueColumns(cs []catalog.Column) []types.Column {
	out := make([]types.Column, len(cs))
	for i, c := range cs {
		out[i] = types.Column{Name: aws.String(c.Name), Type: aws.String(c.Type.String())}
	}
	return out
}

// sameTable reports whether Glue's table already says what in says.
func sameTable(cur *types.Table, in *types.TableInput) bool {
	if cur == nil || cur.StorageDescriptor == nil {
		return false
	}
	a, b := cur.StorageDescriptor, in.StorageDescriptor
	return aws.ToString(a.Location) == aws.ToString(b.Location) &&
		aws.ToString(a.InputFormat) == aws.ToString(b.InputFormat) &&
		sameColumns(a.Columns, b.Columns) && sameColumns(cur.PartitionKeys, in.PartitionKeys) &&
		cur.Parameters["sluice_version"] == in.Parameters["sluice_version"]
}

func sameColumns(a, b []types.Column) bool {
	return slices.EqualFunc(a, b, func(x, y types.Column) bool {
		return aws.ToString(x.Name) == aws.ToString(y.Name) && aws.ToString(x.Type) == aws.ToString(y.Type)
	})
}
