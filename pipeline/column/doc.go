// Package column is the output's column model, shared by the map, the
// reduce, the table schema (pipeline/schema), the crawler and the
// formats: column types and how the kinds of values a column held widen
// into one (Widen), how a source path is named as a column (Name,
// ResolveNames, derived columns' paths), and a run's Plan of names and
// types.
//
// # Names
//
// Nested objects become columns whose name is the snake_cased path
// segments joined with "_" (context.device.adTrackingEnabled ->
// context_device_ad_tracking_enabled); any byte outside [a-z0-9_] becomes
// "_". When two source paths map to the same name, the first in sorted
// source-path order keeps it and the others get "_2", "_3", ... (names
// that occur naturally are never taken by a suffix); the resolution is
// made over every path seen in the run, so all partitions of one run
// agree, and is reported as Collisions. The generated columns own their
// names: a source field that maps to one of them is renamed the same way.
//
// # Types
//
// A column holding values of different JSON types gets the wider type
// over the whole run: bigint -> double -> string, bool mixed with a number
// -> string, arrays are strings, a column that only ever held null is a
// string. The timestamp field becomes two generated columns (see
// TimestampColumns): <name>, the wall-clock time in the job's zone, and
// <name>_utc, the instant.
package column
