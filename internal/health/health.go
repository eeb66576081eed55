// Package health serves the probes every HTTP server of both commands has:
// /livez answers 200 while the process serves (Kubernetes liveness: restart
// it when this fails), /readyz answers 200 only while Redis answers a PING
// within about a second and 503 with a one-line reason otherwise
// (Kubernetes readiness: no traffic, no restart), and /healthz is /readyz.
package health

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Timeout is how long readiness waits to connect to Redis and as long for
// its answer.
const Timeout = time.Second

// Pinger checks a dependency: config.Redis is one.
type Pinger interface {
	Ping(ctx context.Context, timeout time.Duration) error
}

// Register adds /livez, /readyz and /healthz to mux; readiness pings redis.
func Register(mux *http.ServeMux, redis Pinger) {
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	ready := func(w http.ResponseWriter, r *http.Request) {
		if err := redis.Ping(r.Context(), Timeout); err != nil {
			http.Error(w, "not ready: "+strings.ReplaceAll(err.Error(), "\n", " "), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}
	mux.HandleFunc("/readyz", ready)
	mux.HandleFunc("/healthz", ready)
}
