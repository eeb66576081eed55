package config

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"sluice/tasks"
)

// Worker is the worker command's configuration.
type Worker struct {
	Common
	Concurrency int
	// Queues are the queues served and their weights.
	Queues            map[string]int
	queues            string
	HTTP              string
	ShutdownTimeout   time.Duration
	TaskCheckInterval time.Duration
	RetryDelay        time.Duration
	RunCheckInterval  time.Duration
	TempDir           string
	// TempLimit bounds the bytes of the worker's temporary folder (0:
	// none).
	TempLimit   int64
	tempLimit   string
	MemoryLimit int64
	memoryLimit string
	// PlanMinTasks is the fewest map, reduce and encode tasks a job
	// step's plan cuts each phase into, whatever the live fleet.
	PlanMinTasks int
}

// DefaultQueues serves crawls before transform work: a crawl gates the
// rest of its run, and is short.
var DefaultQueues = tasks.QueueCrawl + "=2," + tasks.QueueTransform + "=6"

// Register adds the worker's flags to fs.
func (w *Worker) Register(fs *flag.FlagSet) {
	w.Common.Register(fs)
	fs.IntVar(&w.Concurrency, "concurrency", runtime.GOMAXPROCS(0), "tasks run at once by this process")
	fs.StringVar(&w.queues, "queues", DefaultQueues, "queues and their weights")
	fs.StringVar(&w.HTTP, "http", ":9091", "address for /metrics, /livez, /readyz, /healthz and /debug/pprof/; empty: none")
	fs.DurationVar(&w.ShutdownTimeout, "shutdown-timeout", 8*time.Second, "on SIGTERM, how long running tasks get to finish before they are handed back to the queue")
	fs.DurationVar(&w.TaskCheckInterval, "task-check-interval", time.Second, "how often an idle worker polls the queues")
	fs.DurationVar(&w.RetryDelay, "retry-delay", 0, "delay before a failed task's first retry, doubling after; 0 keeps asynq's default (15 s and up)")
	fs.DurationVar(&w.RunCheckInterval, "run-check-interval", 5*time.Second, "how often a running plan, map, split, reduce or encode task checks its run, and stops if the run was cancelled, has ended or is gone from Redis")
	fs.StringVar(&w.TempDir, "temp-dir", os.TempDir(), "local folder for all temporary files: map and reduce runs, sorted runs and fragments before upload, S3 upload spools; each worker writes in a folder of its own there (sluice-worker-*), and removes at start those of workers that died")
	fs.StringVar(&w.tempLimit, "temp-limit", "0", "the most bytes this worker's temporary files may take (e.g. 4GiB; 0: no bound): a task running when its folder grows past it stops, and is retried without counting an attempt, by this worker or another, once there is room")
	fs.IntVar(&w.PlanMinTasks, "plan-min-tasks", 16, "the fewest map, reduce and encode tasks a job step is cut into, however few workers are live when it is planned (with autoscaling from zero: about the fleet's largest size in slots times 4)")
	fs.StringVar(&w.memoryLimit, "memory-limit", "192MiB", "soft limit of the process's memory (Go's GOMEMLIMIT, which wins when set); map and reduce tasks hold a third of it in rows and sort the rest in runs on -temp-dir")
}

// Validate checks every setting and fills the parsed ones.
func (w *Worker) Validate() error {
	if err := w.Common.Validate(); err != nil {
		return err
	}
	if w.Concurrency < 1 {
		return fmt.Errorf("%s: must be at least 1, got %d", setting("concurrency"), w.Concurrency)
	}
	qs, err := ParseQueues(w.queues)
	if err != nil {
		return fmt.Errorf("%s: %w", setting("queues"), err)
	}
	w.Queues = qs
	for name, d := range map[string]time.Duration{"shutdown-timeout": w.ShutdownTimeout, "task-check-interval": w.TaskCheckInterval, "retry-delay": w.RetryDelay, "run-check-interval": w.RunCheckInterval} {
		if d < 0 || ((name == "task-check-interval" || name == "run-check-interval") && d == 0) {
			return fmt.Errorf("%s: %s must be positive", setting(name), d)
		}
	}
	if w.PlanMinTasks < 1 || w.PlanMinTasks > 100000 {
		return fmt.Errorf("%s: %d is not between 1 and 100000", setting("plan-min-tasks"), w.PlanMinTasks)
	}
	if fi, err := os.Stat(w.TempDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s: %q is not a folder", setting("temp-dir"), w.TempDir)
	}
	tl, err := humanize.ParseBytes(w.tempLimit)
	if err != nil || (tl != 0 && tl < 16<<20) || tl > 1<<62 {
		return fmt.Errorf("%s: %q is not 0 or a size of at least 16MiB", setting("temp-limit"), w.tempLimit)
	}
	w.TempLimit = int64(tl)
	limit, err := humanize.ParseBytes(w.memoryLimit)
	if err != nil || limit < 64<<20 {
		return fmt.Errorf("%s: %q is not a size of at least 64MiB", setting("memory-limit"), w.memoryLimit)
	}
	w.MemoryLimit = int64(limit)
	return nil
}

// ParseQueues reads "crawl=2,transform=6" into queue priorities.
func ParseQueues(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight, found := strings.Cut(part, "=")
		n := 1
		if found {
			var err error
			if n, err = strconv.Atoi(weight); err != nil || n < 1 {
				return nil, fmt.Errorf("queue %q: weight must be a positive integer", part)
			}
		}
		out[name] = n
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no queues given")
	}
	return out, nil
}
