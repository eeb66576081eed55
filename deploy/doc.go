// Package deploy holds the tests of what deploy/ ships: the Kubernetes
// manifests (rendered with kustomize's Go API, as `kubectl apply -k` does),
// the alerting rules (checked as promtool does, with Prometheus's rule and
// PromQL parsers), the Grafana dashboard and the Compose file, each against
// the code: the flags and variables the binaries read, the metrics they
// register, the queues their tasks use and the workflow files.
//
// It is a module of its own (deploy/go.mod), so that kustomize and
// Prometheus stay out of the product's dependencies; scripts/test.sh runs
// its tests with the product's.
package deploy
