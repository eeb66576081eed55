// Package transform is the "mobile-user-daily" job that replaces the Glue
// ETL script: it turns raw Segment logs (gzip NDJSON under
// segment-logs/<source-id>/<received-day epoch ms>/) into one Hive-partitioned
// table (year=Y/month=M/date=YYYY-MM-DD/part-00000.parquet) of flattened,
// deduplicated events placed by the local (Pacific) date of their timestamp.
//
// The job is split so that many workers can run it and any one output
// partition can be rebuilt alone:
//
//   - PlanShards lists the input once and cuts it into shards of about
//     Spec.ShardBytes, in global key order.
//   - MapShard streams one shard: parse, validate, flatten, and bucket rows by
//     output date into intermediate objects in a scratch bucket, plus a
//     quarantine of unusable lines and a manifest (written last; it is the
//     commit marker of the shard).
//   - ReducePartition reads every shard's intermediate for one date,
//     deduplicates, and publishes one file for that partition, replacing
//     whatever the partition held before.
//   - PublishQuarantine copies the shards' quarantines to _errors/ in the
//     output; Cleanup deletes the scratch objects.
//
// The package knows nothing of queues: it is plain functions over
// storage buckets, and the caller decides what runs where.
//
// # Semantics
//
// Flattening: nested objects become columns whose name is the snake_cased
// path segments joined with "_" (context.device.adTrackingEnabled ->
// context_device_ad_tracking_enabled); any byte outside [a-z0-9_] becomes
// "_". Arrays are stored as JSON text. Empty objects produce no column.
// The top-level fields in Spec.Drop are removed. When two source paths map to
// the same name, the first in sorted source-path order keeps it and the
// others get "_2", "_3", ... (names that occur naturally are never taken by a
// suffix); the resolution is made over every path seen in the run, so all
// partitions of one run agree, and is reported in PartitionStats.Collisions.
// The generated columns (see below) own their names: a source field that
// maps to one of them is renamed the same way.
//
// Types: a column holding values of different JSON types gets the wider type
// over the whole run: bigint -> double -> string, bool mixed with a number ->
// string, arrays are strings, a column that only ever held null is a string.
//
// Time: Spec.TimestampField (top level) must be an RFC 3339 string with any
// offset (the same grammar as Go's time.RFC3339Nano). It is replaced by two
// columns: <name> is the wall-clock time in Spec.TimeZone, stored as a
// Parquet TIMESTAMP(MICROS, isAdjustedToUTC=false), and <name>_utc is the
// instant, TIMESTAMP(MICROS, isAdjustedToUTC=true). An event belongs to the
// local date of its timestamp; only dates inside the Window are kept.
//
// Deduplication: one row per Spec.DedupeKey value in the whole run. Of all
// copies inside the window, the one from the lexically smallest (object key,
// line number) wins, even when copies disagree on their date.
//
// Unusable lines (not JSON, not an object, missing/empty/non-string key,
// missing or unparseable timestamp, over-long line, corrupt gzip) go to the
// quarantine with object key, line number, reason and raw line. Blank lines
// are skipped and not counted. For every run:
//
//	lines read = rows written + duplicates + outside window + quarantined
//
// Column order: columns are sorted by name (byte order) in every file. For
// Parquet that is also what parquet-go does with a Group. A partition holds
// the columns seen for its date; CSV files, which readers match by position,
// hold the union of columns of the whole run (or ReduceOptions.Columns).
//
// An empty partition: when a window date has no rows, ReducePartition writes
// nothing and deletes whatever files the partition folder held, because the
// window owns its partitions.
package transform
