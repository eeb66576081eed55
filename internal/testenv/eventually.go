package testenv

import (
	"context"
	"testing"
	"time"
)

// Polling starts at firstPoll between checks and doubles up to maxPoll:
// a state that changes within milliseconds (a key in Redis) is seen at
// once, and a wait of a minute (a run of real worker processes) costs a
// check every fifth of a second, not fifty.
const (
	firstPoll = 10 * time.Millisecond
	maxPoll   = 200 * time.Millisecond
)

// Eventually calls check until it returns nil and fails tb when ctx ends
// first, with what was awaited and check's last answer. It is for state
// that can only be polled (a key in Redis, a queue, an HTTP answer); an
// event that can be received (a channel, a line of output) is awaited
// directly. check fails tb itself (tb.Fatal) for an error no wait cures.
func Eventually(ctx context.Context, tb testing.TB, what string, check func() error) {
	tb.Helper()
	delay := firstPoll
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("%s: still not so when the wait ended (%v): %v", what, context.Cause(ctx), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, maxPoll)
	}
}

// EventuallyWithin is Eventually with a deadline of its own, timeout from
// now.
func EventuallyWithin(tb testing.TB, timeout time.Duration, what string, check func() error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	Eventually(ctx, tb, what, check)
}
