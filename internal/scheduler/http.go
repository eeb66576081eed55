package scheduler

import (
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sluice/internal/access"
	"sluice/internal/api"
	"sluice/internal/buildinfo"
	"sluice/internal/config"
	"sluice/internal/console"
	"sluice/internal/health"
	"sluice/internal/orchestrator"
)

// HTTPOptions are what the scheduler's HTTP endpoints need beside Redis
// and the orchestrator.
type HTTPOptions struct {
	// Service answers the API and the console; nil serves neither.
	Service *api.Service
	// Guard checks tokens and origins; nil: no token, reads open.
	Guard *access.Guard
	// MonitoringWritable lets asynqmon's actions through (with the token);
	// asynqmon is read-only otherwise.
	MonitoringWritable bool
	// PrometheusAddress, when set, is the Prometheus server asynqmon
	// queries for its queue charts.
	PrometheusAddress string
}

// Handler serves the run console at /console/, the API at /api/v1/, the
// asynqmon UI at /monitoring/, Prometheus metrics (queue sizes, latencies,
// runs) at /metrics and the probes /livez, /readyz and /healthz (package
// health). Every state-changing
// request must come from the server's own pages or a non-browser client
// (cross-origin writes are refused) and carry the API token.
func Handler(redis config.Redis, orch *orchestrator.Orchestrator, o HTTPOptions) (http.Handler, error) {
	g := o.Guard
	if g == nil {
		g = access.New(access.Config{})
	}
	mux := http.NewServeMux()
	mon := asynqmon.New(asynqmon.Options{RootPath: api.MonitoringPath, RedisConnOpt: redis,
		ReadOnly: !o.MonitoringWritable, PrometheusAddress: o.PrometheusAddress})
	mux.Handle(api.MonitoringPath+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || !o.MonitoringWritable {
			g.Read(mon).ServeHTTP(w, r)
			return
		}
		g.Write(mon).ServeHTTP(w, r)
	}))

	reg := prometheus.NewRegistry()
	RegisterMetrics(reg, redis, orch)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	health.Register(mux, redis)
	if o.Service != nil {
		api.Register(mux, o.Service, g)
		c, err := console.New(o.Service, g, o.Service.Log)
		if err != nil {
			return nil, err
		}
		c.Register(mux)
		// The first JSON endpoint; its answer is now the API's.
		mux.Handle("GET /runs", http.RedirectHandler("/api/v1/runs", http.StatusPermanentRedirect))
	}
	return g.SameOrigin(mux), nil
}

// RegisterMetrics registers with reg all that the scheduler serves at
// /metrics: asynq's queue series (read from Redis at scrape time), the run,
// schedule and fleet series, orch's step series (the sweep ends steps too),
// and the Go runtime and process collectors.
func RegisterMetrics(reg prometheus.Registerer, redis asynq.RedisConnOpt, orch *orchestrator.Orchestrator) {
	reg.MustRegister(
		metrics.NewQueueMetricsCollector(asynq.NewInspector(redis)),
		newRunCollector(orch, time.Now),
		newScheduleCollector(orch, time.Now),
		newFleetCollector(orch),
		newOrphanCollector(orch),
		orch.Metrics(),
		buildinfo.Collector("scheduler"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}
