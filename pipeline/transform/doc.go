// Package transform is the specification of the "mobile-user-daily" job
// that replaces the Glue ETL script: it turns raw Segment logs (gzip NDJSON
// under segment-logs/<source-id>/<received-day epoch ms>/) into one
// Hive-partitioned table (year=Y/month=M/date=YYYY-MM-DD/, PartitionPath)
// of flattened, deduplicated events placed by the local date of their
// timestamp.
//
// The package holds what the job is asked to do, not how: Spec (decoded
// from a workflow's job block by FromJob, with DefaultSpec's values for
// what the block leaves out), its validation, what it says of columns
// (pinned types, renames, derived columns) and its file format, and the
// input's Objects and Shards. The job runs in packages of its own:
//
//   - pipeline/job: the phases of a run (plan, map, split, reduce, encode,
//     commit) over storage buckets, and what they hand each other;
//   - pipeline/mapper: the map of one shard (parse, flatten, place, filter);
//   - pipeline/reduce: deduplication, sorting and encoding of a date;
//   - pipeline/column: column names, types and a run's column plan;
//   - pipeline/expr: the where and derive expressions (CEL);
//   - pipeline/format: the file formats (format/parquet, format/csv);
//   - pipeline/table: the table format (Hive folders).
//
// None of them knows queues: they are plain functions over storage
// buckets, and the caller decides what runs where.
package transform
