//go:build !unix

package filestore

import (
	"context"
	"sync"
)

// lockMu stands in for flock where there is none: conditional puts are then
// atomic within one process only.
var lockMu sync.Mutex

func lockFile(ctx context.Context, path string) (func(), error) {
	lockMu.Lock()
	return lockMu.Unlock, nil
}
