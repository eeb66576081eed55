//go:build unix

package tempspace

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// errLocked: another process holds the lock.
var errLocked = syscall.EWOULDBLOCK

// lock opens path (creating it as a file when create) and takes an
// exclusive flock on it, waiting for it when create (the claim lock), and
// failing with EWOULDBLOCK otherwise.
func lock(path string, create bool) (*os.File, error) {
	var f *os.File
	var err error
	if create {
		f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	} else {
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !create {
		how |= syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// hold locks the worker's own folder for as long as the process lives.
func hold(dir string) (*os.File, error) { return lock(dir, false) }
