// Package catalog is Sluice's data catalog: databases, tables with full
// nested Hive/Glue column types, partitions, and the history of every schema
// version. It replaces the AWS Glue Data Catalog for the crawlers and jobs.
//
// The catalog is durable on its own, independent of Redis: every object is a
// small JSON document in a storage.Bucket (the "catalog location"):
//
//	<db>/database.json
//	<db>/<table>/table.json                 current definition
//	<db>/<table>/versions/<n>.json          every schema version, 1..current
//	<db>/<table>/partitions/<v1>/<v2>/partition.json
//
// Each table and each partition is its own document, so writers that touch
// different tables (or different partitions of one table) never overwrite
// each other's work, and there is no shared index to lose updates on:
// ListTables and ListPartitions are listings of the bucket.
//
// Limitation: a Store serialises read-modify-write of one table within the
// process (UpdateTable, PutTable), and PutTable rejects a stale Version with
// ErrVersionConflict, but the check and the write are not atomic across
// processes because storage.Bucket has no conditional put. Two processes
// changing the schema of the same table at the same instant can still lose
// one change (last writer wins); the next crawl re-adds it. Partition
// documents have the same last-writer-wins rule, per partition.
package catalog
