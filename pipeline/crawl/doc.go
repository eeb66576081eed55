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
//     are appended (schema_change: update); log keeps the table as it is and
//     reports the change; fail fails the crawl with ErrSchemaChange;
//   - JSON keys keep their case and spelling in the catalog (userAgent,
//     "Product Name"), which is what the data says; the Athena DDL and
//     the Glue sync lower-case them and map odd names back (catalog.HiveName);
//   - files named as non-data (README.txt, logo.png) are skipped, and a
//     folder of only such files is not a partition;
//   - CSV: the first row is taken as a header when it looks like one.
//
// Incremental crawls: every crawl lists the target, and stores with each
// partition a fingerprint of its folder's listing (keys, sizes, ETags).
// Under RecrawlNewFolders (the default) only folders that are new or whose
// fingerprint changed are read; the schema found there is merged into the
// stored one. RecrawlEverything reads every folder.
//
// Known limits: files directly under the target path are only seen when the
// path has no sub-folders (listing is parallel per top-level folder); the
// whole listing is held in memory (about 1 KiB per object); a partition's
// row count is only set when all of its files are Parquet and were sampled;
// a data column named like a partition key is kept as is.
package crawl
