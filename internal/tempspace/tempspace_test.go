package tempspace

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A folder whose owner died (its lock released without its folder removed)
// and legacy temporary files are removed by the next claim; a live
// worker's folder and other files are not.
func TestClaimRemovesWhatDeadWorkersLeft(t *testing.T) {
	parent := t.TempDir()
	live, _, err := Claim(parent, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	dead, _, err := Claim(parent, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead.Dir, "sluice-run-1"), make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	dead.lock.Close() // as the kernel does when the process dies
	old := time.Now().Add(-2 * legacyAge)
	for _, name := range []string{"sluice-run-9", "sluice-pages-9", "sluice-reduce-9", "unrelated.txt"} {
		if err := os.WriteFile(filepath.Join(parent, name), make([]byte, 10), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(parent, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// A legacy file written a moment ago is someone's work in progress
	// (a demo or a preview in process, an older worker in a rollout).
	if err := os.WriteFile(filepath.Join(parent, "sluice-reduce-live"), make([]byte, 10), 0o600); err != nil {
		t.Fatal(err)
	}
	next, rec, err := Claim(parent, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if rec.Folders != 1 || rec.Files != 3 || rec.Bytes != 1030 {
		t.Errorf("reclaimed %+v, want 1 folder, 3 files, 1030 bytes", rec)
	}
	if _, err := os.Stat(dead.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead worker's folder is still there: %v", err)
	}
	for _, p := range []string{live.Dir, next.Dir, filepath.Join(parent, "unrelated.txt"), filepath.Join(parent, "sluice-reduce-live")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(next.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left the folder: %v", err)
	}
}

// A task does not start while the folder is over its limit, and a running
// one is stopped with ErrLimit as the cause.
func TestGuardStopsTasksOverTheLimit(t *testing.T) {
	s, _, err := Claim(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, release, err := s.Guard(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := os.WriteFile(filepath.Join(s.Dir, "sluice-run-1"), make([]byte, 101), 0o600); err != nil {
		t.Fatal(err)
	}
	// What Watch does at its next tick.
	if n, err := s.enforce(); n != 1 || !errors.Is(err, ErrLimit) {
		t.Fatalf("enforce over the limit = %d, %v; want 1 task stopped, ErrLimit", n, err)
	}
	if cause := context.Cause(ctx); !errors.Is(cause, ErrLimit) {
		t.Errorf("the running task's context ended with %v, want ErrLimit", cause)
	}
	if _, _, err := s.Guard(t.Context()); !errors.Is(err, ErrLimit) {
		t.Errorf("a task started over the limit: %v", err)
	}
}
