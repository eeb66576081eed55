package testenv_test

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/redis/go-redis/v9"

	"sluice/internal/testenv"
)

func TestStartRedis(t *testing.T) {
	raw := testenv.StartRedis(t)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "redis" || u.Path != "/0" {
		t.Fatalf("url %q: want redis://127.0.0.1:PORT/0 (err %v)", raw, err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "+OK\r\n" {
		t.Fatalf("SET reply %q, %v", line, err)
	}
}

func TestStartRedisProcessStop(t *testing.T) {
	raw, stop, err := testenv.StartRedisProcess()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	stop()
	stop() // safe twice
	if conn, err := net.Dial("tcp", u.Host); err == nil {
		conn.Close()
		t.Fatalf("redis at %s still accepts connections after stop", u.Host)
	}
}

func TestStartS3(t *testing.T) {
	srv := testenv.StartS3(t)
	name := srv.NewBucket(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") {
		t.Errorf("endpoint %q", srv.Endpoint)
	}
	if fi, err := os.Stat(filepath.Join(srv.Dir, name)); err != nil || !fi.IsDir() {
		t.Fatalf("bucket folder: %v", err)
	}
	ctx := context.Background()
	_, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(name), Key: aws.String("a/b.txt"), Body: strings.NewReader("hi"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(srv.Dir, name, "a", "b.txt"))
	if err != nil || string(got) != "hi" {
		t.Fatalf("object on disk: %q, %v", got, err)
	}
}

func TestFreePort(t *testing.T) {
	p := testenv.FreePort()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d not free: %v", p, err)
	}
	l.Close()
}

func TestRedisServerKeepsItsDataAcrossARestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t, testenv.RedisConfig{Password: "pw", AOF: true})
	opt, err := redis.ParseURL(srv.URL)
	if err != nil || opt.Password != "pw" {
		t.Fatalf("url %q: %v", srv.URL, err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("killed server answers")
	}
	srv.Restart()
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
}

func TestStartSentinel(t *testing.T) {
	t.Parallel()
	master := testenv.StartRedisServer(t, testenv.RedisConfig{Password: "pw"})
	addr := testenv.StartSentinel(t, master, "mymaster", "spw")
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{addr}, SentinelPassword: "spw", Password: "pw"})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(&redis.Options{Addr: master.Addr, Password: "pw"})
	defer direct.Close()
	if v, err := direct.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("master has %q, %v", v, err)
	}
}
