package scheduler

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sluice/internal/config"
	"sluice/internal/health"
	"sluice/internal/orchestrator"
)

// Handler serves the asynqmon UI at /monitoring/, Prometheus metrics
// (queue sizes, latencies) at /metrics, runs as JSON at /runs and the
// probes /livez, /readyz and /healthz (package health).
func Handler(redis config.Redis, orch *orchestrator.Orchestrator) http.Handler {
	mux := http.NewServeMux()
	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: redis, ReadOnly: false})
	mux.Handle("/monitoring/", mon)

	reg := prometheus.NewRegistry()
	RegisterMetrics(reg, redis, orch)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	health.Register(mux, redis)
	mux.HandleFunc("/runs", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]any{}
		for _, name := range orch.Workflows() {
			runs, err := orch.Runs(r.Context(), name, 50)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			out[name] = runs
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
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
		orch.Metrics(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}
