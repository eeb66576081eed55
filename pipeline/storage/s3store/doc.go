// Package s3store is a storage.Bucket over S3 or an S3-compatible server,
// using aws-sdk-go-v2.
//
// Configuration comes from the standard AWS chain (environment, shared
// config files, instance roles), including AWS_ENDPOINT_URL_S3 and
// AWS_ENDPOINT_URL; Options override it where set. A Bucket may be rooted at
// a prefix inside the S3 bucket: every key is stored below it.
//
// Put spools the body to a local temporary file before uploading, so memory
// stays flat for any object size and every request body can be re-read for
// signing and retries; objects above Options.PartSize go up as multipart
// uploads from that file.
//
// The SDK retries a request until its response headers arrive; the body of a
// Get or GetRange that then breaks (a reset, an unexpected EOF, a short
// body) resumes here, with a ranged GET of the rest If-Match the first
// response's ETag, up to Options.ReadResumes times. Every error names what
// was done; one classification of the SDK's error codes marks those no retry
// can fix (a missing bucket, refused credentials or signature, a wrong
// region) permanent (pipeline/fault), with the location and what to fix, as
// New does a configuration no request could work with.
package s3store
