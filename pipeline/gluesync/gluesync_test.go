package gluesync

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/glue"

	"sluice/internal/testenv/gluetest"
	"sluice/pipeline/catalog"
)

// hiveTableRules are what Athena needs of a Hive table's entry, which
// Glue itself does not enforce: the stand-in refuses a TableInput that
// breaks them, so Sync's tables are checked for the reader too.
func hiveTableRules(raw json.RawMessage) string {
	var in struct {
		Name              string
		TableType         string
		PartitionKeys     []glueColumn
		StorageDescriptor *struct {
			Columns     []glueColumn
			Location    string
			InputFormat string
			SerdeInfo   struct{ SerializationLibrary string }
		}
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return err.Error()
	}
	switch sd := in.StorageDescriptor; {
	case sd == nil || !strings.HasPrefix(sd.Location, "s3://"):
		return "StorageDescriptor with an s3:// Location is required"
	case len(sd.Columns) == 0 || sd.SerdeInfo.SerializationLibrary == "" || sd.InputFormat == "":
		return "columns, SerDe and input format are required"
	case in.TableType != "EXTERNAL_TABLE":
		return "TableType must be EXTERNAL_TABLE"
	}
	for _, c := range append(slices.Clone(in.StorageDescriptor.Columns), in.PartitionKeys...) {
		if c.Name == "" || c.Type == "" || c.Name != strings.ToLower(c.Name) || strings.Contains(c.Type, "struct<>") {
			return fmt.Sprintf("column %+v: name and Hive type required, lower-case name", c)
		}
	}
	return ""
}

type glueColumn struct{ Name, Type string }

// newFake starts the Glue stand-in with the Hive rules and the databases
// the tests sync into, and a Glue client signed for it.
func newFake(t *testing.T) (*gluetest.Server, *glue.Client) {
	f := gluetest.Start(t)
	f.CheckTableInput = hiveTableRules
	f.AddDatabase("analytics")
	f.AddDatabase("segmentlogs")
	client := glue.New(glue.Options{
		BaseEndpoint: aws.String(f.URL),
		Region:       f.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(f.AccessKey, f.SecretKey, ""),
	})
	return f, client
}

func mobileTable(days int) (catalog.Table, []catalog.Partition) {
	tb := catalog.Table{Database: "segmentlogs", Name: "mobile", Location: "s3://lake/mobile_user", Format: "parquet", Compression: "snappy", Version: 1,
		Columns:       []catalog.Column{{Name: "message_id", Type: catalog.Prim(catalog.KindString)}, {Name: "timestamp", Type: catalog.Prim(catalog.KindTimestamp)}},
		PartitionKeys: []catalog.Column{{Name: "year", Type: catalog.Prim(catalog.KindInt)}, {Name: "month", Type: catalog.Prim(catalog.KindInt)}, {Name: "date", Type: catalog.Prim(catalog.KindString)}}}
	var parts []catalog.Partition
	for i := range days {
		d := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i)
		parts = append(parts, catalog.Partition{Values: []string{fmt.Sprint(d.Year()), fmt.Sprint(int(d.Month())), d.Format(time.DateOnly)},
			Location: fmt.Sprintf("s3://lake/mobile_user/year=%d/month=%d/date=%s/", d.Year(), d.Month(), d.Format(time.DateOnly))})
	}
	return tb, parts
}

func TestSyncCreatesTableAndBatchesPartitions(t *testing.T) {
	t.Parallel()
	f, client := newFake(t)
	tb, parts := mobileTable(250)
	parts = append(parts, catalog.Partition{Values: []string{"2023", "1", "2023-01-01"}, Location: "s3://lake/gone/", Missing: true})
	res, err := Sync(t.Context(), client, tb, parts, Options{Database: "analytics"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "created" || res.PartitionsCreated != 250 || res.Table != "analytics.mobile" {
		t.Errorf("result %+v", res)
	}
	if want := []string{"GetTable", "CreateTable", "BatchCreatePartition", "BatchCreatePartition", "BatchCreatePartition"}; !slices.Equal(f.Calls(), want) {
		t.Errorf("calls %v, want %v", f.Calls(), want)
	}
	stored := f.Table("analytics", "mobile")
	sd := stored["StorageDescriptor"].(map[string]any)
	if sd["Location"] != "s3://lake/mobile_user/" || sd["SerdeInfo"].(map[string]any)["SerializationLibrary"] != "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe" {
		t.Errorf("storage descriptor %v", sd)
	}

	// Again, unchanged: one GetTable, partitions already there.
	f.ResetCalls()
	res, err = Sync(t.Context(), client, tb, parts, Options{Database: "analytics"})
	if err != nil || res.Action != "unchanged" || res.PartitionsExisted != 250 || res.PartitionsCreated != 0 {
		t.Errorf("second sync %+v, %v", res, err)
	}

	// A schema change updates the table.
	tb.Version = 2
	tb.Columns = append(tb.Columns, catalog.Column{Name: "new_col", Type: catalog.Prim(catalog.KindBigint)})
	f.ResetCalls()
	res, err = Sync(t.Context(), client, tb, parts[:1], Options{Database: "analytics"})
	if err != nil || res.Action != "updated" || !slices.Equal(f.Calls(), []string{"GetTable", "UpdateTable", "BatchCreatePartition"}) {
		t.Errorf("update sync %+v, %v, calls %v", res, err, f.Calls())
	}
}

func TestSyncRawJSONTable(t *testing.T) {
	t.Parallel()
	f, client := newFake(t)
	tb := catalog.Table{Database: "segmentlogs", Name: "ios", Location: "file:///data/raw/segment-logs/ios/", Format: "json", Compression: "gzip", Version: 1,
		Columns: []catalog.Column{
			{Name: "messageId", Type: catalog.Prim(catalog.KindString)},
			{Name: "integrations", Type: catalog.StructOf()},
			{Name: "context", Type: catalog.StructOf(catalog.Column{Name: "userAgent", Type: catalog.Prim(catalog.KindString)})},
		},
		PartitionKeys: []catalog.Column{{Name: "received_day", Type: catalog.Prim(catalog.KindDate)}}}
	parts := []catalog.Partition{{Values: []string{"2024-03-09"}, Location: "file:///data/raw/segment-logs/ios/1709942400000/"}}
	if _, err := Sync(t.Context(), client, tb, parts, Options{}); err == nil {
		t.Fatal("file:// location synced to Glue")
	}
	res, err := Sync(t.Context(), client, tb, parts, Options{MapLocation: map[string]string{"file:///data/raw/": "s3://raw/"}})
	if err != nil || res.PartitionsCreated != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	sd := f.Table("segmentlogs", "ios")["StorageDescriptor"].(map[string]any)
	cols := sd["Columns"].([]any)
	if cols[0].(map[string]any)["Name"] != "messageid" || cols[1].(map[string]any)["Type"] != "string" {
		t.Errorf("columns %v", cols)
	}
	if sd["SerdeInfo"].(map[string]any)["SerializationLibrary"] != "org.openx.data.jsonserde.JsonSerDe" {
		t.Errorf("serde %v", sd["SerdeInfo"])
	}
}
