package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"sluice/internal/tempspace"
)

// ServerConfig are the asynq server settings a worker process exposes.
type ServerConfig struct {
	Concurrency     int
	Queues          map[string]int
	ShutdownTimeout time.Duration
	// TaskCheckInterval is how often idle workers poll the queues (asynq's
	// default, 1 s, when zero). The demo and tests shorten it.
	TaskCheckInterval time.Duration
	// RetryDelay is the delay before the first retry, doubling with each
	// further one up to an hour. Zero keeps asynq's default (about n^4+15 s
	// with jitter).
	RetryDelay time.Duration
}

// NewServer returns the asynq server a worker process runs.
func NewServer(redis asynq.RedisConnOpt, cfg ServerConfig, log *slog.Logger) *asynq.Server {
	return asynq.NewServer(redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		TaskCheckInterval:        cfg.TaskCheckInterval,
		DelayedTaskCheckInterval: cfg.TaskCheckInterval,
		RetryDelayFunc:           retryDelay(cfg.RetryDelay),
		// A task stopped because this worker's temporary folder is full
		// did not fail: it is retried without using up an attempt, so a
		// full disk on one worker cannot fail the run.
		IsFailure: func(err error) bool { return !errors.Is(err, tempspace.ErrLimit) },
		Logger:    asynqLogger{log.With("component", "asynq")},
		// Failures are logged by the worker's middleware with their context.
	})
}

// asynqLogger adapts slog to asynq's logger interface.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }

func retryDelay(base time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, t *asynq.Task) time.Duration {
		// A task whose worker died has already waited for its lease to
		// lapse and for asynq's recoverer (55 to 120 s): it goes back to
		// the queue at once rather than after another backoff (asynq's
		// default adds 15 to 45 s to a first retry).
		if errors.Is(err, asynq.ErrLeaseExpired) {
			return 0
		}
		if base <= 0 {
			return asynq.DefaultRetryDelayFunc(n, err, t)
		}
		return min(base<<min(n, 20), time.Hour)
	}
}
