// Package redisstore is everything Sluice keeps in Redis, and the one place
// that knows its keys and scripts (keys.go): workflow runs and their steps
// (Runs) and the fan-in barriers of job phases (Barrier). asynq's queues
// live beside them under asynq's own prefix.
//
// Redis holds run state only; the data, the catalog and the bookmarks are in
// the buckets. Production Redis needs persistence (AOF): a Redis that
// restarts empty loses the runs in flight (see docs/OPERATIONS.md).
package redisstore
