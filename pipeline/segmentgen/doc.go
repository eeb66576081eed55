// Package segmentgen writes deterministic sample data shaped like Segment's
// S3 destination: segment-logs/<source-id>/<received-day epoch ms>/<file>.gz,
// gzip newline-delimited JSON events as analytics-ios and analytics-android
// send them.
//
// It reproduces the awkward parts of the real feed on purpose: at-least-once
// delivery (the same messageId in another file or another day's folder),
// late events (received days after their timestamp), a few malformed lines,
// timestamps with and without milliseconds or with a non-UTC offset, and
// events on both sides of Pacific midnight and across DST changes. Generate
// returns a Summary with what it wrote and the answer a correct
// deduplicating ETL must produce, so tests can check the pipeline end to end.
//
// The same Config (Seed included) always gives byte-identical objects.
package segmentgen
