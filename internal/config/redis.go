package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a parsed -redis-url: the connection both commands give asynq and
// the orchestrator (it is an asynq.RedisConnOpt). Every client it makes
// names Redis and its address in connection errors, and it prints redacted.
type Redis struct {
	single   *redis.Options         // redis://, rediss://, unix://
	failover *redis.FailoverOptions // redis-sentinel://
	// addr is what errors name: host:port, a socket path, or the master's
	// name and its sentinels.
	addr     string
	redacted string
}

// ParseRedisURL reads a Redis URL:
//
//	redis://[[user]:password@]host[:port][/db][?option=value…]   (rediss:// for TLS)
//	unix://[[user]:password@]/path/to/socket[?db=N]              (redis-socket:// too)
//	redis-sentinel://[[user]:password@]host:port[,host:port…]/master[?db=N][&sentinel_password=…][&sentinel_username=…]
//
// Options are go-redis's (dial_timeout, read_timeout, pool_size, …). For a
// Sentinel URL the user and password are the master's (and its replicas');
// the sentinels get sentinel_password, or the same password when it is
// absent (a sentinel without a password accepts any), and the master's name
// may also be given as ?master=name. Errors never quote the URL's secrets.
func ParseRedisURL(raw string) (Redis, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the whole input, and its reasons quote
		// the part that failed, which can be the password.
		return Redis{}, fmt.Errorf("not a URL: %s (the value is not shown: it may hold a password)", unquoted(err))
	}
	r := Redis{redacted: RedactURL(raw)}
	switch u.Scheme {
	case "redis", "rediss", "unix", "redis-socket":
		if u.Scheme == "redis-socket" { // asynq's name for unix://
			u.Scheme = "unix"
		}
		r.single, err = redis.ParseURL(u.String())
		if err == nil {
			r.addr = r.single.Addr
		}
	case "redis-sentinel":
		r.failover, err = parseSentinelURL(u)
		if err == nil {
			r.addr = fmt.Sprintf("master %s via sentinel %s", r.failover.MasterName, strings.Join(r.failover.SentinelAddrs, ","))
		}
	default:
		err = fmt.Errorf("scheme %q is not redis, rediss, redis-sentinel or unix", u.Scheme)
	}
	if err != nil {
		return Redis{}, scrub(err, urlSecrets(u))
	}
	return r, nil
}

// parseSentinelURL translates a redis-sentinel:// URL into go-redis's
// failover URL (userinfo for the sentinels, username and password options
// for the master, addr options for more sentinels) and parses that, so that
// both forms take the same options.
func parseSentinelURL(u *url.URL) (*redis.FailoverOptions, error) {
	q := u.Query()
	for _, reserved := range []string{"addr", "master_name", "username", "password"} {
		if q.Has(reserved) {
			return nil, fmt.Errorf("redis-sentinel: option %s is not taken: give the master's name as /name and its credentials before the @", reserved)
		}
	}
	master := strings.Trim(u.Path, "/")
	if m := q.Get("master"); m != "" {
		if master != "" && master != m {
			return nil, fmt.Errorf("redis-sentinel: master named twice, %q and %q", master, m)
		}
		master = m
	}
	q.Del("master")
	if master == "" || strings.Contains(master, "/") {
		return nil, errors.New("redis-sentinel: the URL must name the master, e.g. redis-sentinel://host:26379/mymaster")
	}
	var sentinels []string
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return nil, errors.New("redis-sentinel: empty sentinel address")
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "26379")
		}
		sentinels = append(sentinels, h)
	}
	user := u.User.Username()
	password, hasPassword := u.User.Password()
	sentinelUser, sentinelPassword := q.Get("sentinel_username"), password
	if q.Has("sentinel_password") {
		sentinelPassword = q.Get("sentinel_password")
	}
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	q.Set("master_name", master)
	if user != "" {
		q.Set("username", user)
	}
	if hasPassword {
		q.Set("password", password)
	}
	for _, s := range sentinels[1:] {
		q.Add("addr", s)
	}
	v := url.URL{Scheme: "redis", Host: sentinels[0], RawQuery: q.Encode()}
	if sentinelUser != "" || sentinelPassword != "" {
		v.User = url.UserPassword(sentinelUser, sentinelPassword)
	}
	return redis.ParseFailoverURL(v.String())
}

// String is the URL with its secrets replaced (RedactURL).
func (r Redis) String() string { return r.redacted }

// GoString keeps %#v from printing the password too.
func (r Redis) GoString() string { return "config.Redis(" + r.redacted + ")" }

// Addr is what errors name the server by: host:port, a socket path, or the
// master's name and its sentinels.
func (r Redis) Addr() string { return r.addr }

// MakeRedisClient makes a go-redis client (asynq.RedisConnOpt).
func (r Redis) MakeRedisClient() any { return r.client(false, 0) }

// client makes a client. A check client makes one connection and sends
// each command once; a positive timeout replaces the URL's timeouts to
// connect, send and hear the answer.
func (r Redis) client(check bool, timeout time.Duration) *redis.Client {
	var c *redis.Client
	switch {
	case r.failover != nil:
		o := *r.failover
		tuning{&o.MaxRetries, &o.DialerRetries, &o.PoolSize, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout}.apply(check, timeout)
		c = redis.NewFailoverClient(&o)
	case r.single != nil:
		o := *r.single
		tuning{&o.MaxRetries, &o.DialerRetries, &o.PoolSize, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout}.apply(check, timeout)
		c = redis.NewClient(&o)
	default:
		panic("config: Redis used before ParseRedisURL")
	}
	o := c.Options() // with go-redis's defaults filled in
	c.AddHook(nameErrors{addr: r.addr, dial: o.DialTimeout, read: o.ReadTimeout, write: o.WriteTimeout})
	return c
}

// tuning points at the fields a checker changes in either kind of options.
type tuning struct {
	maxRetries, dialerRetries, poolSize *int
	dial, read, write                   *time.Duration
}

func (t tuning) apply(check bool, timeout time.Duration) {
	if check {
		*t.maxRetries, *t.dialerRetries, *t.poolSize = -1, 1, 1
	}
	if timeout > 0 {
		*t.dial, *t.read, *t.write = timeout, timeout, timeout
	}
}

// Ping sends one PING on a new connection, without retries, and waits at
// most timeout to connect and as long for the answer (0: the URL's
// timeouts, go-redis's 5 s by default). Both commands check Redis with it
// at start, and /readyz on every probe. The error names Redis and its
// address, also when it is the server's answer (NOAUTH).
func (r Redis) Ping(ctx context.Context, timeout time.Duration) error {
	c := r.client(true, timeout)
	defer c.Close()
	err := c.Ping(ctx).Err()
	var named *connError
	if err != nil && !errors.As(err, &named) {
		// The server's answer (NOAUTH, WRONGPASS, LOADING): name it too.
		err = &connError{r.addr, err.Error(), err}
	}
	return err
}

// nameErrors is a go-redis hook that wraps every error not from the server
// (a timeout, a refused or reset connection, no sentinel answering) in a
// connError naming Redis and its address. It sits outside go-redis's own
// retries, so it sees only the error a caller gets.
type nameErrors struct {
	addr              string
	dial, read, write time.Duration
}

func (h nameErrors) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h nameErrors) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := h.name(next(ctx, cmd))
		if err != nil && cmd.Err() != nil {
			cmd.SetErr(h.name(cmd.Err()))
		}
		return err
	}
}

func (h nameErrors) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := h.name(next(ctx, cmds))
		for _, cmd := range cmds {
			if cmd.Err() != nil {
				cmd.SetErr(h.name(cmd.Err()))
			}
		}
		return err
	}
}

func (h nameErrors) name(err error) error {
	var (
		reply redis.Error
		named *connError
		op    *net.OpError
	)
	switch {
	case err == nil, errors.As(err, &reply), errors.As(err, &named), errors.Is(err, redis.ErrClosed):
		return err // no error, the server's answer (nil, a transaction conflict), named already, closed by us
	case errors.As(err, &op) && op.Timeout():
		switch op.Op {
		case "dial":
			return &connError{h.addr, fmt.Sprintf("no connection within %s (dial timeout)", h.dial), err}
		case "read":
			return &connError{h.addr, fmt.Sprintf("no answer within %s (read timeout)", h.read), err}
		case "write":
			return &connError{h.addr, fmt.Sprintf("could not send within %s (write timeout)", h.write), err}
		}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		if op == nil || op.Op != "dial" {
			return err // the caller's deadline or cancellation, not Redis's doing
		}
	}
	return &connError{h.addr, err.Error(), err}
}

// connError is a failure to reach or hear from Redis.
type connError struct {
	addr, msg string
	err       error
}

func (e *connError) Error() string { return "redis " + e.addr + ": " + e.msg }
func (e *connError) Unwrap() error { return e.err }

// Redacted stands in for a secret.
const Redacted = "xxxxx"

// RedactURL returns s with its secrets replaced by "xxxxx": the password of
// its userinfo (as net/url's URL.Redacted does) and the values of query
// parameters whose names hold "password", "secret" or "token". A value that
// does not parse as a URL is replaced whole: it may be a mistyped one, with
// its password anywhere. Every page, answer, log line and error that shows a
// configured URL goes through it.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return Redacted
	}
	if len(urlSecrets(u)) == 0 {
		return s
	}
	q := u.Query()
	for k := range q {
		if secretParam(k) {
			q[k] = []string{Redacted}
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// urlSecrets are the secret values in u (the password, secret parameters).
func urlSecrets(u *url.URL) []string {
	var out []string
	if pw, ok := u.User.Password(); ok && pw != "" {
		out = append(out, pw)
	}
	for k, vs := range u.Query() {
		if secretParam(k) {
			for _, v := range vs {
				if v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

func secretParam(name string) bool {
	name = strings.ToLower(name)
	return strings.Contains(name, "password") || strings.Contains(name, "secret") || strings.Contains(name, "token")
}

// scrub replaces every secret in err's message.
func scrub(err error, secrets []string) error {
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, Redacted)
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

var quoted = regexp.MustCompile(`\s*"[^"]*"`)

// unquoted is a URL parse error's reason without the parts of the input it
// quotes: `invalid port ":S3cret" after host` becomes "invalid port after
// host".
func unquoted(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return quoted.ReplaceAllString(err.Error(), "")
}
