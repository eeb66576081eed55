package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"sluice/internal/testenv"
)

// startWorker runs the worker binary on tempDir and returns it once it
// logged that it started, with the folder of its own it reported.
func startWorker(t *testing.T, bin, redisURL, tempDir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "-redis-url", redisURL, "-temp-dir", tempDir, "-http", "", "-workflows", filepath.Join("..", "..", "workflows"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // it may have ended already
	started := regexp.MustCompile(`msg="worker started" temp_dir=(\S+)`)
	sc := bufio.NewScanner(stderr)
	var out strings.Builder
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := started.FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return cmd, m[1]
		}
	}
	t.Fatalf("worker did not start:\n%s", out.String())
	return nil, ""
}

// A worker killed with SIGKILL cannot remove its temporary files; the next
// worker that starts on the same -temp-dir does, with those legacy workers
// left directly in it, and leaves a live worker's folder alone.
func TestWorkerRemovesTheTempFilesOfKilledWorkers(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	redisURL := testenv.StartRedis(t)
	tempDir := t.TempDir()

	live, liveDir := startWorker(t, bin, redisURL, tempDir)
	killed, killedDir := startWorker(t, bin, redisURL, tempDir)
	// What a reduce in progress holds when the worker is killed.
	if err := os.WriteFile(filepath.Join(killedDir, "sluice-run-123"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sluice-run-1", "sluice-pages-2", "sluice-reduce-3"} {
		if err := os.WriteFile(filepath.Join(tempDir, name), []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Untouched for a day: a killed older worker's, not a live one's.
		day := time.Now().Add(-24 * time.Hour)
		if err := os.Chtimes(filepath.Join(tempDir, name), day, day); err != nil {
			t.Fatal(err)
		}
	}
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = killed.Wait() // "signal: killed", as meant
	if _, err := os.Stat(killedDir); err != nil {
		t.Fatalf("the killed worker's folder should still be there until another worker starts: %v", err)
	}

	next, nextDir := startWorker(t, bin, redisURL, tempDir)
	entries, err := os.ReadDir(tempDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	want := []string{filepath.Base(liveDir), filepath.Base(nextDir)}
	if len(names) != 2 || !(names[0] == want[0] && names[1] == want[1] || names[0] == want[1] && names[1] == want[0]) {
		t.Errorf("after a new worker started, %s holds %q; want only the live workers' folders %q", tempDir, names, want)
	}

	// A worker stopped with SIGTERM removes its own folder.
	for _, w := range []*exec.Cmd{live, next} {
		if err := w.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := w.Wait(); err != nil {
			t.Errorf("worker stopped with %v", err)
		}
	}
	if entries, _ := os.ReadDir(tempDir); len(entries) != 1 { // the claim lock
		t.Errorf("after both workers stopped, %s holds %d entries", tempDir, len(entries))
	}
}
