package catalog

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func rawIOS() (Table, []Partition) {
	t := Table{Database: "segmentlogs", Name: "ios", Location: "s3://raw/segment-logs/ios/", Format: "json", Compression: "gzip",
		Columns: []Column{
			{"messageId", Prim(KindString)},
			{"timestamp", Prim(KindString)},
			{"context", StructOf(Column{"app", StructOf(Column{"build", Prim(KindString)})}, Column{"screen density", Prim(KindDouble)})},
			{"context.traits.plan", Prim(KindString)},
			{"products", ArrayOf(StructOf(Column{"price", Prim(KindDouble)}))},
			{"integrations", StructOf()},
		},
		PartitionKeys: []Column{{"received_day", Prim(KindDate)}}}
	parts := []Partition{
		{Values: []string{"2024-03-09"}, Location: "s3://raw/segment-logs/ios/1709942400000/"},
		{Values: []string{"2024-03-10"}, Location: "s3://raw/segment-logs/ios/1710028800000/"},
		{Values: []string{"2024-03-11"}, Location: "s3://raw/segment-logs/ios/1710115200000/", Missing: true},
	}
	return t, parts
}

func TestDDLRawJSON(t *testing.T) {
	t.Parallel()
	tb, parts := rawIOS()
	got, err := CreateTableDDL(tb, parts, DDLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "CREATE EXTERNAL TABLE IF NOT EXISTS `segmentlogs`.`ios` (\n" +
		"  `messageid` string,\n" +
		"  `timestamp` string,\n" +
		"  `context` struct<app:struct<build:string>,`screen density`:double>,\n" +
		"  `context_traits_plan` string,\n" +
		"  `products` array<struct<price:double>>,\n" +
		"  `integrations` string\n" +
		")\n" +
		"PARTITIONED BY (`received_day` date)\n" +
		"ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n" +
		"WITH SERDEPROPERTIES (\n" +
		"  'ignore.malformed.json'='true',\n" +
		"  'mapping.context_traits_plan'='context.traits.plan'\n" +
		")\n" +
		"STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n" +
		"OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n" +
		"LOCATION 's3://raw/segment-logs/ios/'\n" +
		"TBLPROPERTIES (\n" +
		"  'classification'='json',\n" +
		"  'compressionType'='gzip'\n" +
		");\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	alters, err := AddPartitionsDDL(tb, parts, DDLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAlter := "ALTER TABLE `segmentlogs`.`ios` ADD IF NOT EXISTS\n" +
		"  PARTITION (`received_day`='2024-03-09') LOCATION 's3://raw/segment-logs/ios/1709942400000/'\n" +
		"  PARTITION (`received_day`='2024-03-10') LOCATION 's3://raw/segment-logs/ios/1710028800000/';\n"
	if len(alters) != 1 || alters[0] != wantAlter {
		t.Errorf("alter:\n%s\nwant\n%s", strings.Join(alters, ""), wantAlter)
	}

	proj, err := CreateTableDDL(tb, parts, DDLOptions{Projection: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"PARTITIONED BY (`received_day_ms` bigint)",
		"'projection.enabled'='true'",
		"'projection.received_day_ms.type'='integer'",
		"'projection.received_day_ms.range'='1709942400000,2025561600000'", // newest present day, 2024-03-10, + 10 years
		"'projection.received_day_ms.interval'='86400000'",
		"'storage.location.template'='s3://raw/segment-logs/ios/${received_day_ms}/'",
	} {
		if !strings.Contains(proj, w) {
			t.Errorf("projection DDL lacks %s:\n%s", w, proj)
		}
	}
}

func TestDDLParquetOutput(t *testing.T) {
	t.Parallel()
	tb := Table{Database: "segmentlogs", Name: "mobile", Location: "file:///data/mobile_user", Format: "parquet", Compression: "snappy",
		Columns:       []Column{{"message_id", Prim(KindString)}, {"timestamp", Prim(KindTimestamp)}, {"context_device_model", Prim(KindString)}},
		PartitionKeys: []Column{{"year", Prim(KindInt)}, {"month", Prim(KindInt)}, {"date", Prim(KindString)}}}
	var parts []Partition
	for i := range 205 {
		d := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i)
		parts = append(parts, Partition{Values: []string{fmt.Sprint(d.Year()), fmt.Sprint(int(d.Month())), d.Format(time.DateOnly)},
			Location: fmt.Sprintf("file:///data/mobile_user/year=%d/month=%d/date=%s/", d.Year(), d.Month(), d.Format(time.DateOnly))})
	}
	if _, err := CreateTableDDL(tb, parts, DDLOptions{}); err == nil || !strings.Contains(err.Error(), "-map-location") {
		t.Errorf("file location accepted: %v", err)
	}
	o := DDLOptions{MapLocation: map[string]string{"file:///data/": "s3://lake/"}}
	got, err := CreateTableDDL(tb, parts, o)
	if err != nil {
		t.Fatal(err)
	}
	want := "CREATE EXTERNAL TABLE IF NOT EXISTS `segmentlogs`.`mobile` (\n" +
		"  `message_id` string,\n" +
		"  `timestamp` timestamp,\n" +
		"  `context_device_model` string\n" +
		")\n" +
		"PARTITIONED BY (`year` int, `month` int, `date` string)\n" +
		"ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n" +
		"WITH SERDEPROPERTIES (\n" +
		"  'serialization.format'='1'\n" +
		")\n" +
		"STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'\n" +
		"OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'\n" +
		"LOCATION 's3://lake/mobile_user/'\n" +
		"TBLPROPERTIES (\n" +
		"  'classification'='parquet',\n" +
		"  'parquet.compression'='SNAPPY'\n" +
		");\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	alters, err := AddPartitionsDDL(tb, parts, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(alters) != 3 || strings.Count(alters[0], "PARTITION (") != 100 || strings.Count(alters[2], "PARTITION (") != 5 {
		t.Errorf("%d ALTER statements", len(alters))
	}
	if !strings.Contains(alters[0], "  PARTITION (`year`=2024, `month`=1, `date`='2024-01-01') LOCATION 's3://lake/mobile_user/year=2024/month=1/date=2024-01-01/'\n") {
		t.Errorf("first alter:\n%s", alters[0][:400])
	}
	o.Projection = true
	proj, err := CreateTableDDL(tb, parts, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"PARTITIONED BY (`year` int, `month` int, `date` string)",
		"'projection.year.range'='2024,2034'",
		"'projection.month.range'='1,12'",
		"'projection.date.type'='date'",
		"'projection.date.format'='yyyy-MM-dd'",
		"'projection.date.range'='2024-01-01,NOW'",
		"'storage.location.template'='s3://lake/mobile_user/year=${year}/month=${month}/date=${date}/'",
	} {
		if !strings.Contains(proj, w) {
			t.Errorf("projection DDL lacks %s:\n%s", w, proj)
		}
	}
}

func TestDDLCSV(t *testing.T) {
	t.Parallel()
	tb := Table{Database: "lake", Name: "daily", Location: "s3://lake/daily/", Format: "csv", Compression: "gzip",
		Columns:    []Column{{"id", Prim(KindBigint)}, {"name", Prim(KindString)}, {"price", Prim(KindDouble)}},
		Properties: map[string]string{"skip.header.line.count": "1"}}
	got, err := CreateTableDDL(tb, nil, DDLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "CREATE EXTERNAL TABLE IF NOT EXISTS `lake`.`daily` (\n" +
		"  `id` bigint,\n" +
		"  `name` string,\n" +
		"  `price` double\n" +
		")\n" +
		"ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'\n" +
		"WITH SERDEPROPERTIES (\n" +
		"  'escapeChar'='\\',\n" +
		"  'quoteChar'='\"',\n" +
		"  'separatorChar'=','\n" +
		")\n" +
		"STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n" +
		"OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n" +
		"LOCATION 's3://lake/daily/'\n" +
		"TBLPROPERTIES (\n" +
		"  'classification'='csv',\n" +
		"  'compressionType'='gzip',\n" +
		"  'skip.header.line.count'='1'\n" +
		");\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
