package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// StartRedis starts a fresh redis-server for tb and returns its URL,
// redis://127.0.0.1:PORT/0. The server is killed when tb finishes.
func StartRedis(tb testing.TB) string {
	tb.Helper()
	url, stop, err := StartRedisProcess()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(stop)
	return url
}

// StartRedisProcess starts a fresh redis-server without persistence on a free
// loopback port and waits until it answers PING. The caller must call stop,
// which kills the server; stop is safe to call more than once.
func StartRedisProcess() (url string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server not found on PATH (run ./scripts/test.sh, which installs it): %w", err)
	}
	err = retryExited(func() (err error) {
		url, stop, err = startRedis(bin)
		return err
	})
	return url, stop, err
}

func startRedis(bin string) (string, func(), error) {
	port := strconv.Itoa(FreePort())
	// No RDB snapshots or AOF: nothing lands in the working directory and
	// every server starts empty.
	cmd := exec.Command(bin,
		"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--daemonize", "no", "--loglevel", "warning")
	p, err := startProcess("redis-server", cmd)
	if err != nil {
		return "", nil, err
	}
	addr := "127.0.0.1:" + port
	if err := p.waitReady(10*time.Second, func(ctx context.Context) error { return ping(ctx, addr) }); err != nil {
		p.stop()
		return "", nil, err
	}
	return "redis://" + addr + "/0", p.stop, nil
}

// ping sends one RESP PING and expects +PONG. It speaks the protocol directly
// so readiness checks need no client library and log nothing.
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("ping %s: unexpected reply %q", addr, line)
	}
	return nil
}
