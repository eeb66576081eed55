package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	return startRedisWith()
}

// startRedisWith starts a redis-server with extra arguments.
func startRedisWith(args ...string) (url string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server not found on PATH (run ./scripts/test.sh, which installs it): %w", err)
	}
	err = retryExited(func() (err error) {
		url, stop, err = startRedis(bin, args...)
		return err
	})
	return url, stop, err
}

func startRedis(bin string, extra ...string) (string, func(), error) {
	port := strconv.Itoa(FreePort())
	p, err := launchRedis(bin, port, "", extra...)
	if err != nil {
		return "", nil, err
	}
	return "redis://127.0.0.1:" + port + "/0", p.stop, nil
}

// launchRedis starts a redis-server on port and waits until it answers
// PING (after AUTH password, when one is given). Extra arguments override
// the defaults.
func launchRedis(bin, port, password string, extra ...string) (*process, error) {
	// No RDB snapshots or AOF: nothing lands in the working directory and
	// every server starts empty.
	args := append([]string{
		"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--daemonize", "no", "--loglevel", "warning"}, extra...)
	if password != "" {
		args = append(args, "--requirepass", password)
	}
	return launch("redis-server", exec.Command(bin, args...), "127.0.0.1:"+port, password)
}

// launch starts cmd and waits until the server answers PING at addr.
func launch(name string, cmd *exec.Cmd, addr, password string) (*process, error) {
	p, err := startProcess(name, cmd)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(10*time.Second, func(ctx context.Context) error { return ping(ctx, addr, password) }); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// ping sends one RESP PING (after AUTH password, when one is given) and
// expects +PONG. The test setup speaks the protocol directly so readiness
// checks need no client library and log nothing.
func ping(ctx context.Context, addr, password string) error {
	req, want := "*1\r\n$4\r\nPING\r\n", []string{"+PONG"}
	if password != "" {
		req = fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password) + req
		want = append([]string{"+OK"}, want...)
	}
	if err := command(ctx, addr, req, want...); err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	return nil
}

// command sends req (RESP) to addr and expects one reply line per element
// of want, in order.
func command(ctx context.Context, addr, req string, want ...string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	for _, w := range want {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(line); got != w {
			return fmt.Errorf("reply %q, want %q", got, w)
		}
	}
	return nil
}

// shared is the package's one redis-server for RedisDB.
var shared struct {
	once sync.Once
	host string // 127.0.0.1:PORT
	stop func()
	err  error
	next atomic.Int32
}

// sharedDatabases is how many databases the shared server has: one per
// test that asks for one.
const sharedDatabases = 4096

// RedisDB returns the URL of a fresh database on the package's shared
// redis-server, started on the first call: redis://127.0.0.1:PORT/N, with
// N new to this test binary and flushed. Tests that use it may run in
// parallel. A package whose tests use it stops the server with Main.
func RedisDB(tb testing.TB) string {
	tb.Helper()
	url, err := NewRedisDB()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	return url
}

// NewRedisDB is RedisDB for code without a testing.TB (Example functions).
func NewRedisDB() (string, error) {
	shared.once.Do(func() {
		var url string
		url, shared.stop, shared.err = startRedisWith("--databases", strconv.Itoa(sharedDatabases))
		shared.host = strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")
	})
	if shared.err != nil {
		return "", shared.err
	}
	db := shared.next.Add(1)
	if db >= sharedDatabases {
		return "", fmt.Errorf("more than %d Redis databases asked for", sharedDatabases-1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := flushDB(ctx, shared.host, int(db)); err != nil {
		return "", fmt.Errorf("flush database %d: %w", db, err)
	}
	return fmt.Sprintf("redis://%s/%d", shared.host, db), nil
}

// Main runs a package's tests and then stops what they shared (the
// redis-server of RedisDB): func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// flushDB empties database db: SELECT db, then FLUSHDB.
func flushDB(ctx context.Context, addr string, db int) error {
	n := strconv.Itoa(db)
	req := fmt.Sprintf("*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n*1\r\n$7\r\nFLUSHDB\r\n", len(n), n)
	return command(ctx, addr, req, "+OK", "+OK")
}
