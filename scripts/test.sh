#!/usr/bin/env bash
# Runs every test on a fresh machine that has Go: installs the servers the
# integration tests start (redis-server, versitygw) when they are missing,
# and the linter (golangci-lint), then vets, lints (.golangci.yml) and tests
# the whole module, and the deploy checks (deploy/, a module of its own so
# that kustomize and Prometheus stay out of the product's go.mod). Extra
# arguments go to the product's `go test`.
#
# Tests start their own servers on free loopback ports; a Redis already
# running on 6379 is neither needed nor touched.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
# The linter's findings change between releases, so CI and every machine
# run this one.
GOLANGCI_LINT_VERSION=v2.15.0

cd "$(dirname "$0")/.."

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v redis-server >/dev/null 2>&1; then
	echo "test.sh: installing redis-server" >&2
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server
fi

# The console's test drives a real headless Chromium (chromedp).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
	echo "test.sh: installing chromium" >&2
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core
fi

gobin="$(go env GOBIN)"
if [ -z "$gobin" ]; then
	gopath="$(go env GOPATH)"
	gobin="${gopath%%:*}/bin"
fi
versitygw="${SLUICE_VERSITYGW:-}"
if [ -z "$versitygw" ]; then
	if command -v versitygw >/dev/null 2>&1; then
		versitygw="$(command -v versitygw)"
	else
		versitygw="$gobin/versitygw"
	fi
fi
if [ ! -x "$versitygw" ]; then
	echo "test.sh: installing versitygw $VERSITYGW_VERSION" >&2
	go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
	versitygw="$gobin/versitygw"
fi
export SLUICE_VERSITYGW="$versitygw"

golangci_lint="$gobin/golangci-lint"
if command -v golangci-lint >/dev/null 2>&1; then
	golangci_lint="$(command -v golangci-lint)"
fi
if [ ! -x "$golangci_lint" ] || [ "v$("$golangci_lint" version --short 2>/dev/null)" != "$GOLANGCI_LINT_VERSION" ]; then
	echo "test.sh: installing golangci-lint $GOLANGCI_LINT_VERSION" >&2
	go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
	golangci_lint="$gobin/golangci-lint"
fi

go build ./...
go vet ./...
# The lint keeps its results per package in its cache
# (golangci-lint cache status): a warm run over an unchanged tree takes
# seconds, one after an edit re-checks the packages the edit reaches.
"$golangci_lint" run ./...

# -race only where it can find something for its price. The race detector
# sees races only in code that runs concurrently while a test runs, and
# makes what it watches 5 to 10 times slower: pipeline/job took 135
# CPU-seconds under it and 17 without, pipeline/transform 54 and 10.
#  - The data path's packages (plain_packages) are single-threaded loops
#    over bytes (the spec and column model, CEL, the map's JSON, the
#    reduce, the intermediate format, Parquet and CSV, the sample
#    generator) whose few concurrent parts (the map's two writers, a
#    fragment's parallel reads, the job's errgroups) run in every job step,
#    so they are watched through pipeline/job's tests, which run under
#    -race but for the ones that push the most data through that same code
#    (heavy_job_tests). pipeline/job also runs in full without -race.
#  - internal/e2e runs the scheduler and worker binaries, built without
#    -race; under it, only the test's own harness would be watched (98
#    CPU-seconds against 78).
#  - Everything else (the queue, Redis, processes, storage clients, HTTP)
#    runs under -race. A package or test not named here runs under -race:
#    new code is watched by default.
# The two runs overlap: the end-to-end tests mostly wait (a killed
# worker's task comes back after asynq's 30-second lease and its
# once-a-minute recoverer), and the race run fills those waits.
plain_packages='^sluice/(pipeline/(transform|column|expr|mapper|reduce|intermediate|format|segmentgen)|internal/e2e)(/|$)'
heavy_job_tests='^(TestSpillMatchesInMemory|TestIntermediateCompression|TestSegmentgenEndToEnd|TestIntegrationAssembleOnS3|TestParquetEncodings|TestGeneratedColumnsStable|TestHugeValueKeepsFooterSmall)$'
packages="$(go list ./...)"
# shellcheck disable=SC2046 # one word per package
# -parallel 8: go test runs at most GOMAXPROCS (2 here) parallel tests of a
# package at once, and the end-to-end tests spend most of their time
# waiting on their processes (a killed worker's lease takes a minute to
# lapse), so two at a time made that package alone take 3.5 minutes.
go test -shuffle=on -count=1 -timeout 20m -parallel 8 $(grep -E "$plain_packages" <<<"$packages") ./pipeline/job "$@" &
plain=$!
status=0
# shellcheck disable=SC2046
go test -race -shuffle=on -count=1 -timeout 20m -skip "$heavy_job_tests" $(grep -Ev "$plain_packages" <<<"$packages") "$@" || status=$?
wait "$plain" || status=$?
[ "$status" -eq 0 ] || exit "$status"

# The manifests, rules, dashboard and Compose file against the code. No
# -race: these tests run no concurrent code of their own, and the race
# build of kustomize and Prometheus costs minutes.
# deploy/go.mod requires the product's module, so a module the product
# adds must be added there too.
(cd deploy && { go mod tidy -diff >/dev/null || { echo "test.sh: deploy/go.mod lags behind go.mod: run (cd deploy && go mod tidy)" >&2; exit 1; }; } &&
	go vet ./... && go test -shuffle=on -count=1 -timeout 10m ./...)
