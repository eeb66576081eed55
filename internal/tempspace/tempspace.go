// Package tempspace gives a worker process a folder of its own under the
// shared temporary folder (-temp-dir), bounds what it may hold, and removes
// what workers that died left behind.
//
// A worker killed with SIGKILL (or OOM-killed, or a container restarted in
// its pod) cannot remove its temporary files, and nothing else knows they
// are unused. Each worker therefore holds an exclusive flock on its own
// folder for as long as it lives: the kernel releases it when the process
// dies, however it dies, so a folder whose lock can be taken belongs to a
// dead worker and is removed by the next worker that starts there.
package tempspace

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
)

const (
	// folderPrefix starts the name of each worker's folder.
	folderPrefix = "sluice-worker-"
	// claimLock serialises claims and removals in one temporary folder, so
	// a worker never removes a folder another has made but not yet locked.
	claimLock = ".sluice-worker.lock"
)

// legacyPrefixes are the temporary files of workers that wrote straight
// into the temporary folder (before worker folders). No worker of this
// version writes there, but the job run in process does (`scheduler demo`,
// `preview`, the library's defaults) and so do older workers still
// running in a rollout: such a file is a leftover only once nothing has
// written it for legacyAge (a task writes its temporary files all along).
var legacyPrefixes = []string{"sluice-run-", "sluice-pages-", "sluice-reduce-", "sluice-map-", "sluice-quarantine-", "sluice-s3-put-"}

// legacyAge is how long a legacy temporary file must be untouched to be
// removed.
const legacyAge = time.Hour

// ErrLimit is (wrapped in) the error of a task stopped because the worker's
// folder holds more than its limit.
var ErrLimit = errors.New("temporary space limit reached")

// Space is a worker's own temporary folder.
type Space struct {
	// Dir is the folder; give it to everything that writes temporary files.
	Dir   string
	limit int64
	lock  *os.File
	used  atomic.Int64

	mu     sync.Mutex
	guards map[*guard]struct{}
}

// Reclaimed says what Claim removed.
type Reclaimed struct {
	Folders int   // folders of dead workers
	Files   int   // files in the temporary folder itself (legacy workers)
	Bytes   int64 // their size
}

// Claim makes and locks a folder of its own under parent, after removing
// the folders of dead workers and legacy temporary files there. limit
// bounds the bytes the folder may hold (0: no bound; see Guard).
func Claim(parent string, limit int64) (*Space, Reclaimed, error) {
	var rec Reclaimed
	if limit < 0 {
		return nil, rec, fmt.Errorf("temp space: negative limit %d", limit)
	}
	cl, err := lock(filepath.Join(parent, claimLock), true)
	if err != nil {
		return nil, rec, fmt.Errorf("temp space in %s: %w", parent, err)
	}
	defer cl.Close() // releases the lock
	if err := reclaim(parent, &rec); err != nil {
		return nil, rec, fmt.Errorf("temp space in %s: remove what dead workers left: %w", parent, err)
	}
	dir, err := os.MkdirTemp(parent, folderPrefix+"*")
	if err != nil {
		return nil, rec, fmt.Errorf("temp space in %s: %w", parent, err)
	}
	l, err := hold(dir)
	if err != nil {
		os.Remove(dir)
		return nil, rec, fmt.Errorf("temp space in %s: %w", parent, err)
	}
	return &Space{Dir: dir, limit: limit, lock: l, guards: map[*guard]struct{}{}}, rec, nil
}

// reclaim removes the folders of dead workers (whose lock is free) and
// legacy temporary files in parent.
func reclaim(parent string, rec *Reclaimed) error {
	des, err := os.ReadDir(parent)
	if err != nil {
		return err
	}
	for _, de := range des {
		p := filepath.Join(parent, de.Name())
		switch {
		case de.IsDir() && strings.HasPrefix(de.Name(), folderPrefix):
			l, err := lock(p, false)
			if errors.Is(err, errLocked) || errors.Is(err, fs.ErrNotExist) {
				continue // a live worker's
			}
			if err != nil {
				return err
			}
			rec.Bytes += size(p)
			err = os.RemoveAll(p)
			l.Close()
			if err != nil {
				return err
			}
			rec.Folders++
		case de.Type().IsRegular() && isLegacy(de.Name()):
			fi, err := de.Info()
			if err != nil || time.Since(fi.ModTime()) < legacyAge {
				continue // gone, or still being written
			}
			rec.Bytes += fi.Size()
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			rec.Files++
		}
	}
	return nil
}

func isLegacy(name string) bool {
	for _, p := range legacyPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// size is the bytes of the files below dir.
func size(dir string) int64 {
	var n int64
	// A file that vanishes during the walk is one fewer to count, not an
	// error: the walk's own error is never anything but nil.
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Close removes the folder and releases it.
func (s *Space) Close() error {
	err := os.RemoveAll(s.Dir)
	s.lock.Close()
	return err
}

// Used is the folder's size when last measured (by Watch or Check).
func (s *Space) Used() int64 { return s.used.Load() }

// Limit is the bound on the folder's bytes (0: none).
func (s *Space) Limit() int64 { return s.limit }

// Check measures the folder and returns an error wrapping ErrLimit when it
// holds more than the limit.
func (s *Space) Check() error {
	n := size(s.Dir)
	s.used.Store(n)
	if s.limit > 0 && n > s.limit {
		return fmt.Errorf("%w: %s holds %s, more than -temp-limit %s; the task is retried, by this worker or another, when there is room",
			ErrLimit, s.Dir, humanize.IBytes(uint64(n)), humanize.IBytes(uint64(s.limit)))
	}
	return nil
}

// Watch measures the folder every interval until ctx ends, and stops every
// guarded task while the folder is over its limit.
func (s *Space) Watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n, err := s.enforce(); n > 0 {
			log.Warn("temporary space over its limit: stopping the running tasks", "tasks", n, "err", err)
		}
	}
}

// enforce measures the folder and, when it is over its limit, stops every
// guarded task; it returns how many it stopped.
func (s *Space) enforce() (int, error) {
	err := s.Check()
	if err == nil {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for g := range s.guards {
		g.stop(err)
	}
	return len(s.guards), err
}

type guard struct{ stop context.CancelCauseFunc }

// Guard returns a context that Watch cancels, with an error wrapping
// ErrLimit as its cause, when the folder goes over its limit, and fails at
// once if it already is. release must be called when the task ends.
func (s *Space) Guard(ctx context.Context) (context.Context, func(), error) {
	if s.limit == 0 {
		return ctx, func() {}, nil
	}
	if err := s.Check(); err != nil {
		return ctx, func() {}, err
	}
	gctx, stop := context.WithCancelCause(ctx)
	g := &guard{stop: stop}
	s.mu.Lock()
	s.guards[g] = struct{}{}
	s.mu.Unlock()
	return gctx, func() {
		s.mu.Lock()
		delete(s.guards, g)
		s.mu.Unlock()
		stop(nil)
	}, nil
}
