// Package filestore is a storage.Bucket over a local folder: keys are
// slash-separated paths below the folder.
//
// Put writes a hidden temporary file (".sluice-tmp-*") in the target folder
// and renames it into place, so readers see the old object or the new one,
// never a partial file; listings skip those temporary files. Delete removes
// folders it leaves empty, so ListDirs agrees with S3, where a "folder"
// exists only while some object is below it.
package filestore
