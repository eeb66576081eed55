// Package storeurl opens a storage.Bucket from a location string:
// s3://bucket/prefix, file:///abs/path, or a plain local path.
//
// It lives apart from package storage because it imports the backends, which
// themselves import storage.
package storeurl
