#!/usr/bin/env bash
# Chaos soak: many workflow runs back to back against real processes (two
# workers, the scheduler, Redis with AOF, versitygw behind the S3 fault
# proxy), each run meeting one fault at a random phase -- a worker killed,
# both workers killed, the scheduler killed, the waiting client killed,
# Redis kill -9'd and restarted, a worker's temp space filled past its
# -temp-limit -- while the proxy cuts and throttles S3 reads. After every run
# the table is checked against the generator's expected rows (and the
# independent oracle when SLUICE_ORACLE names its binary); at the end
# nothing may be left behind. It is internal/e2e's TestChaosSoak with
# every fault and as many runs as asked.
#
#   scripts/chaos-soak.sh [RUNS [SEED]]     (default 50 runs, a random seed)
#
# It writes its figures (runs, faults by kind, mean run time by fault, rows
# checked, S3 faults, leftovers) to chaos-soak-report.json, or to
# $SLUICE_SOAK_REPORT. Needs redis-server on PATH and SLUICE_VERSITYGW (or
# versitygw on PATH), as the e2e tests do. Run it niced on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
seed=${2:-$(date +%s)}
export SLUICE_SOAK_RUNS=$runs SLUICE_SOAK_SEED=$seed
export SLUICE_SOAK_REPORT=${SLUICE_SOAK_REPORT:-$PWD/chaos-soak-report.json}
# Each run gets up to 6 minutes (a run whose both workers were killed waits
# up to 2 for asynq's lease recovery).
exec nice -n 10 go test -count=1 -run '^TestChaosSoak$' -timeout "$((runs * 6 + 10))m" -v ./internal/e2e/
