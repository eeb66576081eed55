package cli

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"

	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
)

// DefaultWaitRetry is how long `start -wait` keeps retrying a failing read
// of its run by default: longer than a Redis restart with AOF (seconds), a
// Kubernetes reschedule of the Redis pod (about a minute) and a Sentinel
// failover within Sentinel's default failover-timeout (3 minutes).
const DefaultWaitRetry = 5 * time.Minute

// readRun reads a run, riding out a Redis blip: a failed read is retried
// with exponential backoff (0.5 s doubling, with jitter, to at most 15 s
// between tries), logging each retry, for at most retry since the first
// failure (0: no retries). A run that is gone (ErrNotFound) and the end of
// ctx are not retried.
func readRun(ctx context.Context, orch *orchestrator.Orchestrator, id string, retry time.Duration, log *slog.Logger) (redisstore.Run, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 500*time.Millisecond, 15*time.Second
	opts := []backoff.RetryOption{backoff.WithBackOff(b), backoff.WithMaxElapsedTime(retry)}
	if retry <= 0 {
		opts = append(opts, backoff.WithMaxTries(1))
	}
	tries := 0
	opts = append(opts, backoff.WithNotify(func(err error, next time.Duration) {
		tries++
		log.Warn("reading the run failed; retrying", "run", id, "err", err, "retry", tries, "next_in", next.Round(10*time.Millisecond), "wait_retry", retry)
	}))
	return backoff.Retry(ctx, func() (redisstore.Run, error) {
		run, err := orch.Run(ctx, id)
		if errors.Is(err, redisstore.ErrNotFound) {
			return run, backoff.Permanent(err)
		}
		return run, err
	}, opts...)
}
