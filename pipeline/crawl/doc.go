// Package crawl is Sluice's crawler, the stand-in for an AWS Glue crawler:
// it lists the objects below a target path, classifies them (gzip or plain
// NDJSON, Parquet, CSV), infers one table schema by sampling, detects
// partitions from the folder layout, and writes the table and its
// partitions to the catalog.
//
// The stages are separate on purpose (list.go: listing and layout,
// infer.go: type inference and merging, sample.go: per-format readers,
// crawl.go: orchestration and catalog update) so that incremental crawls,
// schema-change policies and more formats can be added to one stage.
//
// Rules, following Glue where it is sensible:
//   - one target path is one table;
//   - files and folders whose name starts with "_" or "." are ignored;
//   - key=value folders become partition columns of that name (int or
//     bigint when every value is numeric, else string); other folders become
//     partition_0, partition_1, ... by level, except a level whose names are
//     all 13-digit epoch milliseconds at UTC midnight (Segment's received-day
//     folders), which becomes received_day of type date (YYYY-MM-DD);
//   - files at a folder depth other than the most common one are skipped;
//   - nested objects become structs with the union of the fields seen (in
//     order of first appearance), arrays become array<elem>; numbers widen
//     int -> bigint -> double, any other disagreement resolves to string;
//     every disagreement is recorded as a catalog.Conflict, never an error;
//   - existing columns keep their order and are never narrowed; new columns
//     are appended.
//
// Known limits: files directly under the target path are only seen when the
// path has no sub-folders (listing is parallel per top-level folder); every
// folder is sampled on every crawl; a partition's row count is only set
// when all of its files are Parquet and were sampled; a data column named
// like a partition key is kept as is.
package crawl
