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
// Concurrency: table documents are updated with an optimistic loop
// (Store.UpdateTable): read table.json and its ETag, apply the change, write
// it back only if the ETag is unchanged (storage.ConditionalPutter: S3's
// If-Match / If-None-Match, or filestore's flock), else read and apply
// again. Two crawlers writing one table at the same time, in any processes,
// therefore lose no update, and only the writer that won version n writes
// versions/<n>.json. A bucket without conditional puts falls back to
// last-writer-wins across processes (writers in one process are still
// serialised). Partition documents are last-writer-wins, per partition:
// writers of the same partition describe the same folder.
package catalog
