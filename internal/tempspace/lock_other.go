//go:build !unix

package tempspace

import (
	"errors"
	"os"
)

// errLocked: another process holds the lock. Without flock every worker
// folder looks held, so none is removed: only legacy files are.
var errLocked = errors.New("locked")

func lock(path string, create bool) (*os.File, error) {
	if create {
		return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return nil, errLocked
}

// hold opens the worker's own folder; nothing can lock it here.
func hold(dir string) (*os.File, error) { return os.Open(dir) }
