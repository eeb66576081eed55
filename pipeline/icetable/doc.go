// Package icetable publishes a job's output as an Apache Iceberg table
// (github.com/apache/iceberg-go), the second table format beside Hive
// folders.
//
// Sluice writes the data files itself (its own Parquet writer, assembled
// by the partition commits as for Hive folders); this package only gives
// them Iceberg field ids, describes them to Iceberg with the metrics their
// footers already hold (no file is read again), and commits them:
//
//   - one snapshot per run: every partition (date) the run rebuilt is
//     replaced in one atomic commit (ReplaceDataFilesWithDataFiles), so a
//     reader sees the whole run or none of it;
//   - the snapshot summary carries the run id (sluice.run-id), so a commit
//     retried after it landed is recognised and not applied twice;
//   - a commit that loses an optimistic-concurrency race (another run
//     committed first) is retried against the new table state.
//
// The table is partitioned by identity on its `date` column, the job's
// local date (yyyy-mm-dd, a string as in the Hive table), so queries that
// filter on date prune files as they pruned folders; the files hold the
// column too, for readers that do not take it from the manifests.
//
// Catalogs: the embedded one (the default) is iceberg-go's SQL catalog on
// a SQLite file kept in the output location beside the data
// (_sluice/iceberg/catalog.db), read before and written back after each
// change with a conditional put: the put is the compare-and-swap that
// makes commits from several workers, on a folder or on S3, atomic (a
// Hadoop-style catalog, iceberg-go's catalog/hadoop, is not atomic on
// object stores: it refuses S3 warehouses unless allow-unsafe-commits is
// set). AWS Glue and REST catalogs are iceberg-go's own; Glue's is
// wrapped so that every race it loses comes back as a conflict Sluice
// retries (glueConflicts).
//
// Compaction (Compact) joins a partition's small files into files of the
// job's target size in one snapshot of its own: iceberg-go's planner picks
// them and its rewrite commits them, Sluice's assembly joins them without
// decoding a row.
package icetable
