package testenv

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// S3Faults say which responses an S3Proxy breaks. Only object GETs (a path
// below a bucket) are touched; listings, HEADs and writes pass as they are.
// The zero value breaks nothing.
type S3Faults struct {
	// CutEvery cuts the 1st, the CutEvery+1-th, … object GET whose body is
	// longer than CutAfter bytes (counted across all keys): the response
	// delivers CutAfter bytes of its body and then the connection ends,
	// alternately closed (the client reads an unexpected EOF) and reset
	// (connection reset by peer). Zero cuts none.
	CutEvery int
	// CutAfter is how many body bytes a cut response sends first.
	CutAfter int64
	// MaxCutsPerKey, when positive, stops cutting an object's GETs after
	// that many cuts, so that a reader allowed more resumes always gets
	// through however the GETs of concurrent readers interleave.
	MaxCutsPerKey int
	// FailEvery answers the 1st, the FailEvery+1-th, … object GET with 503
	// SlowDown, S3's throttling answer. Zero fails none.
	FailEvery int
	// HoldPrefix, when set, holds every object GET of a bucket/key with
	// that prefix (path-style, e.g. "raw/") until its client goes away:
	// a task reading such an object is certainly running when the test
	// acts on its worker.
	HoldPrefix string
}

// S3Proxy is a reverse proxy in front of an S3 server that breaks responses
// as its S3Faults say, and counts what it broke. Its S3Server is the
// upstream's with the proxy's Endpoint: clients sign for the proxy's host,
// which the proxy passes on unchanged.
type S3Proxy struct {
	S3Server
	faults S3Faults

	candidates atomic.Int64 // object GETs long enough to cut
	gets       atomic.Int64 // object GETs
	cuts       atomic.Int64
	fails      atomic.Int64
	held       atomic.Int64
	mu         sync.Mutex
	cutsPerKey map[string]int
}

// StartS3Proxy starts a proxy to upstream on a free loopback port; it stops
// when tb finishes.
func StartS3Proxy(tb testing.TB, upstream S3Server, faults S3Faults) *S3Proxy {
	tb.Helper()
	target, err := url.Parse(upstream.Endpoint)
	if err != nil {
		tb.Fatalf("testenv: s3 proxy upstream: %v", err)
	}
	p := &S3Proxy{S3Server: upstream, faults: faults, cutsPerKey: map[string]int{}}
	transport := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the signed Host header
		},
		Transport: transport,
		ErrorLog:  quiet, // a cut ends the copy of a body on purpose
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, isGet := objectGet(r)
		if !isGet {
			rp.ServeHTTP(w, r)
			return
		}
		n := p.gets.Add(1)
		if p.faults.HoldPrefix != "" && strings.HasPrefix(key, p.faults.HoldPrefix) {
			p.held.Add(1)
			<-r.Context().Done()
			return
		}
		if every := int64(p.faults.FailEvery); every > 0 && (n-1)%every == 0 {
			p.fails.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`))
			return
		}
		rp.ServeHTTP(&cutWriter{ResponseWriter: w, p: p, key: key}, r)
	}))
	srv.Config.ErrorLog = quiet
	srv.Start()
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		transport.CloseIdleConnections()
	})
	p.Endpoint = srv.URL
	return p
}

// Cuts is how many responses the proxy has cut.
func (p *S3Proxy) Cuts() int { return int(p.cuts.Load()) }

// Fails is how many object GETs the proxy has answered with 503.
func (p *S3Proxy) Fails() int { return int(p.fails.Load()) }

// Held is how many object GETs the proxy has held (HoldPrefix).
func (p *S3Proxy) Held() int { return int(p.held.Load()) }

// Gets is how many object GETs the proxy has seen.
func (p *S3Proxy) Gets() int { return int(p.gets.Load()) }

// objectGet reports whether r reads an object (path-style: /bucket/key),
// and its bucket/key.
func objectGet(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet {
		return "", false
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	return path, bucket != "" && key != ""
}

// shouldCut decides, once the response's headers are known, whether to cut
// it.
func (p *S3Proxy) shouldCut(key string, status int, length int64) bool {
	f := p.faults
	if f.CutEvery <= 0 || (status != http.StatusOK && status != http.StatusPartialContent) || length <= f.CutAfter {
		return false
	}
	n := p.candidates.Add(1)
	if (n-1)%int64(f.CutEvery) != 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.MaxCutsPerKey > 0 && p.cutsPerKey[key] >= f.MaxCutsPerKey {
		return false
	}
	p.cutsPerKey[key]++
	return true
}

var quiet = log.New(io.Discard, "", 0)

var errCut = errors.New("testenv: response cut by the s3 proxy")

// cutWriter passes a response through until, if the proxy decides to cut
// it, CutAfter body bytes have gone out; then it ends the connection.
type cutWriter struct {
	http.ResponseWriter
	p    *S3Proxy
	key  string
	left int64 // body bytes still to send before the cut; -1: no cut
	cut  bool
}

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *cutWriter) WriteHeader(status int) {
	c.left = -1
	length, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64)
	if err == nil && c.p.shouldCut(c.key, status, length) {
		c.left = c.p.faults.CutAfter
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.cut {
		return 0, errCut
	}
	if c.left < 0 || int64(len(b)) < c.left {
		n, err := c.ResponseWriter.Write(b)
		if c.left >= 0 {
			c.left -= int64(n)
		}
		return n, err
	}
	n, _ := c.ResponseWriter.Write(b[:c.left])
	c.cut = true
	rc := http.NewResponseController(c.ResponseWriter)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		return n, err
	}
	if c.p.cuts.Add(1)%2 == 0 {
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // close with a reset
		}
	}
	_ = conn.Close()
	return n, errCut
}
