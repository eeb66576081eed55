// Package mapper is the map of a job: MapShard streams one shard of raw
// Segment logs (gzip NDJSON), parses and flattens each line with its own
// single-pass JSON lexer, places the event by the local date of its
// timestamp, evaluates the job's where and derive expressions
// (pipeline/expr), and writes per output date one rows and one ids file
// of intermediate records (pipeline/intermediate) into scratch, plus a
// quarantine of unusable lines and a Manifest, written last: the commit
// marker of the shard. It also answers what the manifests say of a run's
// columns (RunTypes, DateColumns, ColMap).
//
// # Semantics
//
// Flattening: nested objects become columns (see pipeline/column for
// their names and types). Arrays are stored as JSON text. Empty objects
// produce no column. The top-level fields in Spec.Drop are removed.
//
// Time: Spec.TimestampField (top level) must be an RFC 3339 string with
// any offset (the same grammar as Go's time.RFC3339Nano). An event belongs
// to the local date of its timestamp in Spec.TimeZone; only dates inside
// the window are kept.
//
// Unusable lines (not JSON, not an object, missing/empty/non-string key,
// missing or unparseable timestamp, a value its pinned type cannot hold,
// a failed expression, over-long line, corrupt gzip) go to the quarantine
// with object key, line number, reason and raw line. Blank lines are
// skipped and not counted. For every shard:
//
//	lines read = rows written + outside window + filtered + quarantined
package mapper
