package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"sluice/internal/testenv"
)

func TestEventuallyReturnsOnceTheCheckHolds(t *testing.T) {
	calls := 0
	testenv.EventuallyWithin(t, time.Minute, "the third call", func() error {
		if calls++; calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if calls != 3 {
		t.Errorf("%d calls, want 3", calls)
	}
}

// fatalTB records a Fatalf and ends its goroutine, as testing.T's does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventuallyFailsWithTheLastAnswer(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("the test's budget"))
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testenv.Eventually(ctx, tb, "the run's end", func() error { return errors.New("state RUNNING") })
	}()
	<-done
	for _, want := range []string{"the run's end", "the test's budget", "state RUNNING"} {
		if !strings.Contains(tb.msg, want) {
			t.Errorf("failure %q does not say %q", tb.msg, want)
		}
	}
}
