package gluesync

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/glue"

	"sluice/pipeline/catalog"
)

// fakeGlue answers the Glue JSON 1.1 protocol the way Glue does for the
// four operations Sync uses, and rejects what Glue would reject: a missing
// required field, a batch of more than 100 partitions, partition values
// that do not match the partition keys, an unsigned request.
type fakeGlue struct {
	t      *testing.T
	mu     sync.Mutex
	tables map[string]map[string]any  // db.table -> TableInput as decoded
	parts  map[string]map[string]bool // db.table -> values joined by "/"
	calls  []string
}

type glueColumn struct{ Name, Type string }

type storageDescriptor struct {
	Columns      []glueColumn
	Location     string
	InputFormat  string
	OutputFormat string
	SerdeInfo    struct {
		SerializationLibrary string
		Parameters           map[string]string
	}
}

type fakeTableInput struct {
	Name              string
	TableType         string
	Parameters        map[string]string
	PartitionKeys     []glueColumn
	StorageDescriptor *storageDescriptor
}

func (f *fakeGlue) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "Message": msg}) // the client reads what arrives
	}
	target, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AWSGlue.")
	if r.Method != http.MethodPost || !ok || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		fail(400, "UnknownOperationException", "bad target or content type")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		fail(403, "MissingAuthenticationTokenException", "unsigned request")
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, target)
	var req struct {
		DatabaseName       string
		Name               string
		TableName          string
		TableInput         *fakeTableInput
		PartitionInputList []struct {
			Values            []string
			StorageDescriptor *storageDescriptor
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		fail(400, "SerializationException", err.Error())
		return
	}
	if req.DatabaseName == "" {
		fail(400, "ValidationException", "DatabaseName is required")
		return
	}
	checkTable := func(in *fakeTableInput) string {
		switch {
		case in == nil || in.Name == "":
			return "TableInput.Name is required"
		case in.StorageDescriptor == nil || !strings.HasPrefix(in.StorageDescriptor.Location, "s3://"):
			return "StorageDescriptor with an s3:// Location is required"
		case len(in.StorageDescriptor.Columns) == 0 || in.StorageDescriptor.SerdeInfo.SerializationLibrary == "" || in.StorageDescriptor.InputFormat == "":
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
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(v) // the client reads what arrives
	}
	switch target {
	case "GetTable":
		tb, ok := f.tables[req.DatabaseName+"."+req.Name]
		if !ok {
			fail(400, "EntityNotFoundException", "Table "+req.Name+" not found.")
			return
		}
		reply(map[string]any{"Table": tb})
	case "CreateTable", "UpdateTable":
		if msg := checkTable(req.TableInput); msg != "" {
			fail(400, "InvalidInputException", msg)
			return
		}
		k := req.DatabaseName + "." + req.TableInput.Name
		_, exists := f.tables[k]
		if target == "CreateTable" && exists {
			fail(400, "AlreadyExistsException", "Table already exists.")
			return
		}
		if target == "UpdateTable" && !exists {
			fail(400, "EntityNotFoundException", "Table not found.")
			return
		}
		var tb map[string]any
		raw, _ := json.Marshal(req.TableInput)
		if err := json.Unmarshal(raw, &tb); err != nil {
			fail(500, "InternalServiceException", err.Error())
			return
		}
		tb["DatabaseName"] = req.DatabaseName
		f.tables[k] = tb
		reply(map[string]any{})
	case "BatchCreatePartition":
		k := req.DatabaseName + "." + req.TableName
		tb, ok := f.tables[k]
		switch {
		case !ok:
			fail(400, "EntityNotFoundException", "Table not found.")
			return
		case len(req.PartitionInputList) == 0 || len(req.PartitionInputList) > 100:
			fail(400, "ValidationException", fmt.Sprintf("1 validation error detected: Value at 'partitionInputList' failed to satisfy constraint: Member must have length less than or equal to 100 (got %d)", len(req.PartitionInputList)))
			return
		}
		nkeys := len(tb["PartitionKeys"].([]any))
		var errs []any
		for _, p := range req.PartitionInputList {
			if len(p.Values) != nkeys || p.StorageDescriptor == nil || !strings.HasPrefix(p.StorageDescriptor.Location, "s3://") {
				fail(400, "InvalidInputException", fmt.Sprintf("partition %v: %d values for %d keys, or no s3 location", p.Values, len(p.Values), nkeys))
				return
			}
			v := strings.Join(p.Values, "/")
			if f.parts[k] == nil {
				f.parts[k] = map[string]bool{}
			}
			if f.parts[k][v] {
				errs = append(errs, map[string]any{"PartitionValues": p.Values,
					"ErrorDetail": map[string]string{"ErrorCode": "AlreadyExistsException", "ErrorMessage": "Partition already exists."}})
				continue
			}
			f.parts[k][v] = true
		}
		reply(map[string]any{"Errors": errs})
	default:
		fail(400, "UnknownOperationException", target)
	}
}

func newFake(t *testing.T) (*fakeGlue, *glue.Client) {
	f := &fakeGlue{t: t, tables: map[string]map[string]any{}, parts: map[string]map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := glue.New(glue.Options{
		BaseEndpoint: aws.String(srv.URL),
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
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
	if want := []string{"GetTable", "CreateTable", "BatchCreatePartition", "BatchCreatePartition", "BatchCreatePartition"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	stored := f.tables["analytics.mobile"]
	sd := stored["StorageDescriptor"].(map[string]any)
	if sd["Location"] != "s3://lake/mobile_user/" || sd["SerdeInfo"].(map[string]any)["SerializationLibrary"] != "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe" {
		t.Errorf("storage descriptor %v", sd)
	}

	// Again, unchanged: one GetTable, partitions already there.
	f.calls = nil
	res, err = Sync(t.Context(), client, tb, parts, Options{Database: "analytics"})
	if err != nil || res.Action != "unchanged" || res.PartitionsExisted != 250 || res.PartitionsCreated != 0 {
		t.Errorf("second sync %+v, %v", res, err)
	}

	// A schema change updates the table.
	tb.Version = 2
	tb.Columns = append(tb.Columns, catalog.Column{Name: "new_col", Type: catalog.Prim(catalog.KindBigint)})
	f.calls = nil
	res, err = Sync(t.Context(), client, tb, parts[:1], Options{Database: "analytics"})
	if err != nil || res.Action != "updated" || !slices.Equal(f.calls, []string{"GetTable", "UpdateTable", "BatchCreatePartition"}) {
		t.Errorf("update sync %+v, %v, calls %v", res, err, f.calls)
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
	sd := f.tables["segmentlogs.ios"]["StorageDescriptor"].(map[string]any)
	cols := sd["Columns"].([]any)
	if cols[0].(map[string]any)["Name"] != "messageid" || cols[1].(map[string]any)["Type"] != "string" {
		t.Errorf("columns %v", cols)
	}
	if sd["SerdeInfo"].(map[string]any)["SerializationLibrary"] != "org.openx.data.jsonserde.JsonSerDe" {
		t.Errorf("serde %v", sd["SerdeInfo"])
	}
}
