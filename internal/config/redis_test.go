package config

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"sluice/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestParseRedisURL(t *testing.T) {
	t.Parallel()
	r, err := ParseRedisURL("redis://:S3cret@127.0.0.1:6380/2?read_timeout=2s")
	if err != nil || r.single.Addr != "127.0.0.1:6380" || r.single.Password != "S3cret" || r.single.DB != 2 || r.single.ReadTimeout != 2*time.Second {
		t.Fatalf("redis://: %+v %v", r.single, err)
	}
	if r.String() != "redis://:xxxxx@127.0.0.1:6380/2?read_timeout=2s" || strings.Contains(r.GoString(), "S3cret") {
		t.Errorf("prints as %s / %#v", r, r)
	}
	if r, err := ParseRedisURL("rediss://h:6380/0"); err != nil || r.single.TLSConfig == nil {
		t.Errorf("rediss: %v", err)
	}
	if r, err := ParseRedisURL("redis-socket://:pw@/run/redis.sock?db=3"); err != nil || r.single.Network != "unix" || r.single.Addr != "/run/redis.sock" || r.single.DB != 3 {
		t.Errorf("redis-socket: %+v %v", r.single, err)
	}

	// Sentinel: the password goes to the master, and to the sentinels
	// unless they have their own.
	for raw, want := range map[string]redis.FailoverOptions{
		"redis-sentinel://:pw@h1:26379,h2:26380/mymaster?db=3": {
			MasterName: "mymaster", SentinelAddrs: []string{"h1:26379", "h2:26380"}, Password: "pw", SentinelPassword: "pw", DB: 3},
		"redis-sentinel://app:pw@h1:26379/mymaster?sentinel_password=spw": {
			MasterName: "mymaster", SentinelAddrs: []string{"h1:26379"}, Username: "app", Password: "pw", SentinelPassword: "spw"},
		"redis-sentinel://:pw@h1:26379?master=mymaster&sentinel_password=&sentinel_username=": {
			MasterName: "mymaster", SentinelAddrs: []string{"h1:26379"}, Password: "pw"},
		"redis-sentinel://h1:26379/mymaster?sentinel_username=mon&sentinel_password=spw&dial_timeout=2s": {
			MasterName: "mymaster", SentinelAddrs: []string{"h1:26379"}, SentinelUsername: "mon", SentinelPassword: "spw", DialTimeout: 2 * time.Second},
	} {
		r, err := ParseRedisURL(raw)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		f := r.failover
		if f.MasterName != want.MasterName || strings.Join(f.SentinelAddrs, ",") != strings.Join(want.SentinelAddrs, ",") || f.Username != want.Username ||
			f.Password != want.Password || f.SentinelUsername != want.SentinelUsername || f.SentinelPassword != want.SentinelPassword ||
			f.DB != want.DB || f.DialTimeout != want.DialTimeout {
			t.Errorf("%s:\n got %+v\nwant %+v", raw, *f, want)
		}
		if strings.Contains(r.String(), "pw") {
			t.Errorf("%s prints as %s", raw, r)
		}
	}
	if r, _ := ParseRedisURL("redis-sentinel://:pw@h1,h2/mymaster"); r.Addr() != "master mymaster via sentinel h1:26379,h2:26379" {
		t.Errorf("sentinel addr %q", r.Addr())
	}

	for raw, want := range map[string]string{
		"http://h:1":                                `scheme "http"`,
		"redis-sentinel://:S3cret@h1:26379":         "must name the master",
		"redis-sentinel://h1/a?master=b":            "master named twice",
		"redis-sentinel://h1/a?password=S3cret":     "option password is not taken",
		"redis://:S3cret@h:1/0?bogus=1":             "unexpected option: bogus",
		"redis://:S3cret@h:1/x":                     "invalid database number",
		"redis://:S3cret@h:1/0?read_timeout=S3cret": "read_timeout",
	} {
		_, err := ParseRedisURL(raw)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "S3cret") {
			t.Errorf("%s: error %v, want %q in it and no password", raw, err, want)
		}
	}
}

// A malformed URL's error says what is wrong without quoting it: net/url's
// error holds the whole input, and its reason may quote the password.
func TestMalformedRedisURLHidesThePassword(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"redis://:S3cret/PW@h:6379/0", // '/' in the password ends the host: invalid port ":S3cret"
		"redis://:S3cret%zz@h:6379/0", // a bad escape in the password
		"redis://:S3cret@h:6379x/0",
		"redis://:S3cret@[::1/0",
		" redis://:S3cret@h/0",
	} {
		c := Common{RedisURL: raw}
		_, err := c.Redis()
		if err == nil || strings.Contains(err.Error(), "S3cret") || !strings.Contains(err.Error(), "-redis-url (SLUICE_REDIS_URL): not a URL") {
			t.Errorf("%s: %v", raw, err)
		}
		if got := RedactURL(raw); strings.Contains(got, "S3cret") {
			t.Errorf("RedactURL(%s) = %s", raw, got)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                             "",
		"redis://127.0.0.1:6379/0":     "redis://127.0.0.1:6379/0",
		"redis://:pw@127.0.0.1:6379/0": "redis://:xxxxx@127.0.0.1:6379/0",
		"redis://user:pw@h/0":          "redis://user:xxxxx@h/0",
		"redis-sentinel://:pw@h1,h2/m?db=1&sentinel_password=spw": "redis-sentinel://:xxxxx@h1,h2/m?db=1&sentinel_password=xxxxx",
		"https://hooks.example/x?token=abc&a=1":                   "https://hooks.example/x?a=1&token=xxxxx",
		"redis://:p/w@h/0":                                        "xxxxx",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A Redis that accepts but never answers: the start-up PING, and every
// later command of the clients asynq and the orchestrator get, fail naming
// Redis, its address and the timeout.
func TestSilentRedisIsNamed(t *testing.T) {
	t.Parallel()
	addr := testenv.SilentListener(t)
	r, err := ParseRedisURL("redis://" + addr + "/0?read_timeout=200ms&max_retries=1")
	if err != nil {
		t.Fatal(err)
	}
	want := "redis " + addr + ": no answer within 200ms (read timeout)"
	ctx := context.Background()
	if err := r.Ping(ctx, 0); err == nil || err.Error() != want {
		t.Errorf("ping: %v, want %q", err, want)
	}
	if err := r.Ping(ctx, 100*time.Millisecond); err == nil || err.Error() != "redis "+addr+": no answer within 100ms (read timeout)" {
		t.Errorf("ping with a timeout: %v", err)
	}
	c := r.MakeRedisClient().(redis.UniversalClient)
	defer c.Close()
	err = c.Get(ctx, "k").Err()
	if err == nil || err.Error() != want || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("get: %v, want %q wrapping the timeout", err, want)
	}
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { p.Get(ctx, "a"); p.Get(ctx, "b"); return nil })
	if err == nil || err.Error() != want || cmds[1].Err() == nil || cmds[1].Err().Error() != want {
		t.Errorf("pipeline: %v, %v", err, cmds)
	}
}

// The server's own answers pass through unchanged (asynq compares redis.Nil
// with ==); a refused connection is named.
func TestRedisErrorsFromTheServerPassThrough(t *testing.T) {
	t.Parallel()
	r, err := ParseRedisURL(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	c := r.MakeRedisClient().(redis.UniversalClient)
	defer c.Close()
	ctx := context.Background()
	if err := c.Get(ctx, "missing").Err(); err != redis.Nil {
		t.Errorf("get of a missing key: %v, want redis.Nil itself", err)
	}
	if err := c.Do(ctx, "NOSUCHCOMMAND").Err(); err == nil || strings.HasPrefix(err.Error(), "redis 127") {
		t.Errorf("unknown command: %v, want the server's error as is", err)
	}
	if err := r.Ping(ctx, time.Second); err != nil {
		t.Errorf("ping: %v", err)
	}

	gone := net.JoinHostPort("127.0.0.1", "1") // nothing listens on port 1
	r, _ = ParseRedisURL("redis://" + gone + "/0")
	if err := r.Ping(ctx, time.Second); err == nil || !strings.HasPrefix(err.Error(), "redis "+gone+": ") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("refused: %v", err)
	}
}

func TestRedactText(t *testing.T) {
	t.Parallel()
	in := `dial redis://:S3cret@10.0.0.1:6379/0 failed; sentinel redis-sentinel://u:pw2@h:26379/m?db=1&sentinel_password=pw3 and "https://hooks.example/x?token=abc"`
	got := RedactText(in)
	for _, secret := range []string{"S3cret", "pw2", "pw3", "abc"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q still holds %q", got, secret)
		}
	}
	if !strings.Contains(got, "redis://:xxxxx@10.0.0.1:6379/0") || !strings.Contains(got, "db=1") {
		t.Errorf("redacted too much: %q", got)
	}
}
