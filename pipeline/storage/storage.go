package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotExist is returned (wrapped) by Get and Stat when the key is absent.
var ErrNotExist = errors.New("object does not exist")

// ObjectInfo describes one stored object. Keys are relative to the bucket's
// root (the prefix of the location the bucket was opened at) and always use
// "/" as separator.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
	ETag    string // opaque change marker; for files a hash of size and mtime
}

// Reader is the read-only part of a Bucket, for code that must not write.
type Reader interface {
	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. Returning an error from fn stops the listing and
	// List returns that error.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// ListDirs returns the immediate "sub-folders" below prefix (which should
	// end in "/" or be empty), each ending in "/", in lexical order.
	ListDirs(ctx context.Context, prefix string) ([]string, error)
	// Get opens an object for reading. A missing key gives ErrNotExist.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange opens length bytes of an object from offset (length < 0:
	// to the end). A range past the end reads what there is. A missing key
	// gives ErrNotExist.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat describes one object. A missing key gives ErrNotExist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Location is the URL the bucket was opened at (s3://b/p or file:///p).
	Location() string
}

// Bucket is an object store rooted at a location.
type Bucket interface {
	Reader
	// Put stores the whole of body under key, replacing any object there.
	// Readers never see a partly written object.
	Put(ctx context.Context, key string, body io.Reader) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// ErrPreconditionFailed is returned (wrapped) by PutIfMatch when the object
// is not in the state the caller expected.
var ErrPreconditionFailed = errors.New("precondition failed")

// ConditionalPutter is implemented by buckets that can replace an object
// only if nobody changed it since it was read: a compare-and-swap that
// read-modify-write callers (the catalog) use to lose no update, across
// processes.
type ConditionalPutter interface {
	// PutIfMatch stores body under key only if the object's current ETag
	// is etag, or, when etag is "", only if there is no object at key.
	// Otherwise it writes nothing and returns ErrPreconditionFailed. It
	// returns the ETag of the stored object.
	PutIfMatch(ctx context.Context, key string, body io.Reader, etag string) (string, error)
}

// Copier is implemented by buckets that copy an object without moving its
// bytes through the caller (S3's CopyObject). Copy uses it when it can.
type Copier interface {
	// Copy stores the object at src under dst too. A missing src gives
	// ErrNotExist.
	Copy(ctx context.Context, src, dst string) error
}

// BatchDeleter is implemented by buckets that delete many keys in one
// request (S3's DeleteObjects). DeleteKeys uses it when it can.
type BatchDeleter interface {
	// DeleteBatch removes keys (at most 1000); missing keys are not an
	// error.
	DeleteBatch(ctx context.Context, keys []string) error
}

// FileMover is implemented by buckets that can take a local file as an
// object without copying it (a folder on the same file system: a rename).
// PutFile uses it when it can.
type FileMover interface {
	// MoveFile stores the file at path under key and removes it from
	// path; like Put, readers never see a partly written object.
	MoveFile(ctx context.Context, key, path string) error
}

// LeftoverRemover is implemented by buckets where an interrupted write can
// leave something that is not an object, invisible to List and Delete (a
// folder's temporary files). S3 keeps no such leftovers in the key space:
// an interrupted multipart upload is expired by the bucket's lifecycle rule
// (AbortIncompleteMultipartUpload).
type LeftoverRemover interface {
	// RemoveLeftovers removes the leftovers of writes under prefix that
	// were last touched before olderThan, and returns how many it removed
	// and their bytes. A write still under way touches its file as it
	// goes, so a leftover older than any write takes is never one in use.
	RemoveLeftovers(ctx context.Context, prefix string, olderThan time.Time) (n int, bytes int64, err error)
}
