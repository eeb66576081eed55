// Package gluesync copies a Sluice catalog table and its partitions to the
// AWS Glue Data Catalog, so Athena on AWS sees the same tables without a
// Glue crawler. It is off by default (the crawler's glue_sync block).
//
// Sync creates the table (CreateTable) or, when its definition differs,
// updates it (UpdateTable) with a StorageDescriptor (location, columns
// with Hive types, input/output formats, SerDe) and the partition keys,
// then adds every partition that is not marked missing with
// BatchCreatePartition, at most 100 per call (Glue's limit). Partitions
// Glue already has are left alone, and nothing is ever deleted in Glue:
// partitions whose folder disappeared are marked in Sluice's catalog only.
// The Glue database must exist.
package gluesync
