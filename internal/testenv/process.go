package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// port can be taken again before the caller binds it, so the starters retry
// when a server exits early.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("testenv: find free port: %v", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// process is one running server in its own process group.
type process struct {
	name   string
	cmd    *exec.Cmd
	output *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // exit error, valid after exited is closed
	once   sync.Once
}

// startProcess starts cmd in a new process group, capturing its combined
// output for error messages.
func startProcess(name string, cmd *exec.Cmd) (*process, error) {
	p := &process{name: name, cmd: cmd, output: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = p.output
	cmd.Stderr = p.output
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop kills the whole process group and waits for the leader to exit. It is
// safe to call more than once.
func (p *process) stop() {
	p.once.Do(func() {
		// Negative pid: signal the group, so helpers the server forked die too.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	})
}

// waitReady polls ready with a short, growing backoff until it succeeds, the
// process exits, or timeout passes. It returns an error carrying the
// server's output when the server did not come up.
func (p *process) waitReady(timeout time.Duration, ready func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		last = ready(ctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return &exitedError{name: p.name, err: p.err, output: p.output.String()}
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w\n%s", p.name, timeout, last, p.output.String())
		}
		select {
		case <-p.exited:
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// exitedError reports a server that exited before it was ready, most often
// because another process took its port first.
type exitedError struct {
	name   string
	err    error
	output string
}

func (e *exitedError) Error() string {
	return fmt.Sprintf("%s exited before it was ready (%v):\n%s", e.name, e.err, e.output)
}

// retryExited runs start up to three times while the server exits before it
// is ready, which covers losing the race for the port FreePort picked.
func retryExited(start func() error) error {
	var err error
	for range 3 {
		err = start()
		var ee *exitedError
		if !errors.As(err, &ee) {
			break
		}
	}
	return err
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child's
// stdout and stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Cap what we keep: only the start of the output explains a failed start.
	if b.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
