// Package storage is the one small interface Sluice uses for object storage.
//
// Backends live in their own packages: filestore (a local folder) and
// s3store (S3 or an S3-compatible server). storeurl.Open picks one from a
// location such as s3://bucket/prefix or file:///data, and
// storagetest.AcceptanceTest is the behaviour every backend must pass.
package storage
