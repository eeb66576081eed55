package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// RedisConfig configures StartRedisServer.
type RedisConfig struct {
	// Password is required of clients (requirepass).
	Password string
	// AOF logs every write to an append-only file, fsynced before the reply
	// (appendfsync always), in a folder of the test's: the server started
	// again after Kill has every write it acknowledged.
	AOF bool
}

// RedisServer is a private redis-server that a test can kill and start
// again on the same port and data folder, as an operator's restart would.
type RedisServer struct {
	URL  string // redis://[:password@]127.0.0.1:PORT/0
	Addr string // 127.0.0.1:PORT
	Port int
	// Password is what clients must give (empty: none).
	Password string

	tb   testing.TB
	bin  string
	args []string
	mu   sync.Mutex
	proc *process
}

// StartRedisServer starts a private redis-server for tb; it is killed when
// tb finishes.
func StartRedisServer(tb testing.TB, cfg RedisConfig) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("testenv: redis-server not found on PATH (run ./scripts/test.sh, which installs it): %v", err)
	}
	s := &RedisServer{Password: cfg.Password, tb: tb, bin: bin}
	if cfg.AOF {
		s.args = []string{"--dir", tb.TempDir(), "--appendonly", "yes", "--appendfsync", "always"}
	}
	err = retryExited(func() error {
		s.Port = FreePort()
		s.proc, err = launchRedis(bin, strconv.Itoa(s.Port), s.Password, s.args...)
		return err
	})
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
	u := url.URL{Scheme: "redis", Host: s.Addr, Path: "/0"}
	if s.Password != "" {
		u.User = url.UserPassword("", s.Password)
	}
	s.URL = u.String()
	tb.Cleanup(s.Kill)
	return s
}

// Kill kills the server (SIGKILL, as a crash would) and waits for it to
// exit. Killing a killed server does nothing.
func (s *RedisServer) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc.stop()
}

// Restart starts the killed server again on its port and folder and waits
// until it answers (with AOF, after it has loaded its data); it fails the
// test if it does not.
func (s *RedisServer) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := launchRedis(s.bin, strconv.Itoa(s.Port), s.Password, s.args...)
	if err != nil {
		s.tb.Fatalf("testenv: restart redis-server on %s: %v", s.Addr, err)
	}
	s.proc = p
}

// StartSentinel starts a Redis Sentinel for tb (redis-server --sentinel,
// the binary Debian's redis-sentinel package links to) that monitors master
// under the name name and, when password is not empty, requires it of its
// own clients. It returns the sentinel's address, 127.0.0.1:PORT.
func StartSentinel(tb testing.TB, master *RedisServer, name, password string) string {
	tb.Helper()
	dir := tb.TempDir()
	var addr string
	err := retryExited(func() error {
		port := FreePort()
		addr = fmt.Sprintf("127.0.0.1:%d", port)
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n", port, dir, name, master.Port)
		if master.Password != "" {
			conf += fmt.Sprintf("sentinel auth-pass %s %s\n", name, master.Password)
		}
		if password != "" {
			conf += "requirepass " + password + "\n"
		}
		// Sentinel rewrites its configuration file, so it gets a fresh one.
		file := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			return err
		}
		p, err := launch("redis-sentinel", exec.Command(master.bin, file, "--sentinel"), addr, password)
		if err == nil {
			tb.Cleanup(p.stop)
		}
		return err
	})
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	return addr
}

// SilentListener listens on a free loopback port, accepts connections and
// never answers, as a hung Redis (or a proxy in front of a dead one) would.
// It returns its address, 127.0.0.1:PORT; it closes when tb finishes.
func SilentListener(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	tb.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}
