// Package reduce is the reduce of a job, after the map (pipeline/mapper)
// and the split (pipeline/job): Slice reads one slice of a date's virtual
// buckets from every shard's intermediates, keeps one row per dedupe key,
// sorts the rows and writes one sorted run per column group, spilling to
// local disk and merging when a slice outgrows its memory; EncodeFragment
// merges the runs of one column group of one row group and writes them
// with the job's file format (pipeline/format) as a fragment, which the
// commit assembles into files. ConvertFile and FileColumns rewrite
// published files to a widened schema (format.Converter).
//
// # Semantics
//
// Deduplication: one row per Spec.DedupeKey value in the whole run. Of
// all copies inside the window, the one from the lexically smallest
// (object key, line number) wins, even when copies disagree on their
// date; a key already published in a partition the run does not rebuild
// (SliceInput.Published) is left out.
//
// Row order: rows are sorted by (utc timestamp, key fingerprint, key), so
// a rerun gives the same bytes. Column order: for Parquet, which readers
// match by name, a date's files hold the columns seen on that date,
// sorted by name; CSV files, which readers match by position, hold every
// column of the table in table order.
package reduce
