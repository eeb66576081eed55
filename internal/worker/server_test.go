package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// A task recovered from a dead worker is requeued at once: it has already
// waited for its lease and the recoverer. Other failures back off.
func TestRetryDelayOfRecoveredTasks(t *testing.T) {
	for _, base := range []time.Duration{0, time.Second} {
		f := retryDelay(base)
		if d := f(0, asynq.ErrLeaseExpired, nil); d != 0 {
			t.Errorf("base %s: a recovered task waits %s, want 0", base, d)
		}
		if d := f(0, errors.New("S3 503"), nil); d < time.Second {
			t.Errorf("base %s: a failed task waits %s, want a backoff", base, d)
		}
	}
	if d := retryDelay(time.Second)(3, errors.New("x"), nil); d != 8*time.Second {
		t.Errorf("the fourth retry waits %s, want 8s", d)
	}
}
