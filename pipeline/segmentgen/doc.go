// Package segmentgen writes deterministic sample data shaped like Segment's
// S3 destination: segment-logs/<source-id>/<received-day epoch ms>/<file>.gz,
// gzip newline-delimited JSON events as analytics-ios and analytics-android
// send them.
//
// The events are those of a shop app that follows Segment's mobile and
// e-commerce specs: screens, identifies with the user's profile and
// address, application lifecycle events, deep links with their campaign,
// product searches, views and adds, and orders with their products and
// shipping address; each carries the context the SDKs add (app, device
// with its name and push token, network, OS, screen, user
// agent, locale, time zone). Every type has a fixed set of fields and
// every source and day has each type at least once (given a day of at
// least as many events as types), so the flattened
// table has the same columns, with the same types, for any seed and size.
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
