#!/usr/bin/env bash
# bench-transform.sh: the mobile-user-daily job on about 1 GB of generated
# logs, with one worker process and with two, against the DuckDB reference
# transform (../shared/refbench) on the same data, in one session; the
# output is checked with refbench's oracle.
#
#   scripts/bench-transform.sh                 # ~1 GB, 7 days
#   EVENTS_PER_DAY=20000 scripts/bench-transform.sh   # smaller, quicker
#
# Environment: EVENTS_PER_DAY (default 58000 per source per day), DAYS (7),
# START (2024-03-08), BENCH_DIR (default a new temp folder; generated data
# is reused when it is already there), REFBENCH (../shared/refbench from the
# repo), REF and ORACLE (binaries; built from REFBENCH when absent),
# SKIP_REF=1 to skip DuckDB.
#
# Each worker runs with -concurrency 1 and GOMAXPROCS=1, so "per core" is
# one core per worker process (the garbage collector included), with
# the worker's default -memory-limit (448MiB) and -retry-delay 1s (a
# retried task costs a second, not asynq's default 15 s or more). The data is
# generated with -malformed-rate 0: the DuckDB reference aborts on the
# generator's invalid timestamps, so both sides read the same valid lines.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
EVENTS_PER_DAY=${EVENTS_PER_DAY:-58000}
DAYS=${DAYS:-7}
START=${START:-2024-03-08}
REFBENCH=${REFBENCH:-$root/../shared/refbench}
REF=${REF:-/tmp/ref}
ORACLE=${ORACLE:-/tmp/oracle}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/sluice-bench-XXXXXX)}
END=$(date -u -d "$START + $((DAYS - 1)) days" +%F)

log() { printf '== %s\n' "$*" >&2; }

bin=$BENCH_DIR/bin
mkdir -p "$bin"
log "building scheduler and worker"
(cd "$root" && go build -o "$bin/" ./cmd/scheduler ./cmd/worker)
for tool in ref oracle; do
	var=${tool^^}
	if [[ ! -x ${!var} ]]; then
		log "building $tool from $REFBENCH (first build downloads DuckDB)"
		(cd "$REFBENCH" && go build -o "${!var}" "./$tool")
	fi
done

raw=$BENCH_DIR/raw
if [[ ! -d $raw/segment-logs ]]; then
	log "generating $DAYS days x $EVENTS_PER_DAY events per source into $raw"
	"$bin/scheduler" generate -out "file://$raw" -seed 1 -start "$START" -days "$DAYS" \
		-events-per-day "$EVENTS_PER_DAY" -malformed-rate 0 | sed -n 1p
fi
raw_bytes=$(find "$raw" -name '*.gz' -printf '%s\n' | awk '{s+=$1} END {print s}')
log "input: $(find "$raw" -name '*.gz' | wc -l) objects, $((raw_bytes / 1000000)) MB gzip"

# A private redis-server on a free port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	echo $((20000 + RANDOM % 20000)))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
	--dir "$BENCH_DIR" >"$BENCH_DIR/redis.log" 2>&1 &
redis_pid=$!
workers=()
cleanup() {
	for p in "${workers[@]}"; do kill "$p" 2>/dev/null || true; done
	kill "$redis_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

export SLUICE_REDIS_URL=redis://127.0.0.1:$port/0
export SLUICE_WORKFLOWS=$root/workflows/mobile-user.yaml
export SLUICE_RAW=file://$raw
export SLUICE_LOG_FORMAT=text
# 32 MiB shards: about 6 map tasks for 1 GB, so two workers share the map
# phase evenly (the workflow's default is 64 MiB).
export SLUICE_SHARD_BYTES=${SLUICE_SHARD_BYTES:-33554432}
# The workers run with their default -memory-limit (448MiB: a soft Go heap
# limit, a third of which is the reduce's spill budget). Set GOMEMLIMIT to
# try another limit; it wins over the flag.

# seconds DURATION: a Go duration (1m2.5s, 950ms, 12.3s) in seconds.
seconds() {
	awk -v d="$1" 'BEGIN {
		s = 0
		while (match(d, /^[0-9.]+(h|ms|m|s|µs)/)) {
			tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			n = tok + 0; u = tok; sub(/^[0-9.]+/, "", u)
			if (u == "h") s += n * 3600; else if (u == "m") s += n * 60
			else if (u == "s") s += n; else if (u == "ms") s += n / 1000; else s += n / 1e6
		}
		printf "%.3f", s }'
}

# run_sluice N: the whole workflow with N worker processes; prints one line
# "workers wall_s input_bytes lines rows_written rss_kib..." and leaves the
# table in $BENCH_DIR/out-N.
run_sluice() {
	local n=$1 dir=$BENCH_DIR/run-$1
	rm -rf "$dir" && mkdir -p "$dir"
	redis-cli -p "$port" flushall >/dev/null
	export SLUICE_OUTPUT=file://$dir/out SLUICE_CATALOG=file://$dir/catalog SLUICE_SCRATCH=file://$dir/scratch
	workers=()
	for i in $(seq "$n"); do
		GOMAXPROCS=1 TMPDIR=$dir "$bin/worker" -concurrency 1 -http "" -task-check-interval 50ms -retry-delay 1s \
			>"$dir/worker-$i.log" 2>&1 &
		workers+=($!)
	done
	"$bin/scheduler" start -start "$START" -end "$END" -wait >"$dir/start.log" 2>&1 ||
		{ cat "$dir/start.log" >&2; return 1; }
	local id
	id=$(awk '/^started run/ {print $3}' "$dir/start.log")
	"$bin/scheduler" show "$id" >"$dir/show.txt"
	local rss=()
	for p in "${workers[@]}"; do
		rss+=("$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status")")
		kill "$p"
	done
	for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done
	workers=()
	local took
	took=$(awk '$1 == "mobile-user-daily" {print $5}' "$dir/show.txt")
	local s
	s=$(sed -n '/^mobile-user-daily summary:/,/^$/p' "$dir/show.txt")
	printf '%s %s %s %s %s %s\n' "$n" "$(seconds "$took")" \
		"$(sed -n 's/.*"input_bytes": \([0-9]*\).*/\1/p' <<<"$s")" \
		"$(sed -n 's/.*"lines_read": \([0-9]*\).*/\1/p' <<<"$s")" \
		"$(sed -n 's/.*"rows_written": \([0-9]*\).*/\1/p' <<<"$s")" "${rss[*]}"
}

results=()
for n in 1 2; do
	log "sluice: $n worker process(es), concurrency 1 each"
	results+=("$(run_sluice "$n")")
	log "  ${results[-1]}"
done

refs=()
if [[ ${SKIP_REF:-} != 1 ]]; then
	for t in 1 2; do
		log "duckdb reference: $t thread(s)"
		rm -rf "$BENCH_DIR/ref-$t"
		refs+=("$("$REF" -in "$raw" -out "$BENCH_DIR/ref-$t" -start "$START" -end "$END" -format parquet -threads "$t" | tail -1)")
		log "  ${refs[-1]}"
	done
fi

log "oracle on the two-worker table"
oracle_out=$("$ORACLE" -in "$raw" -out "$BENCH_DIR/run-2/out" -start "$START" -end "$END" 2>&1 || true)
oracle_last=$(tail -1 <<<"$oracle_out")

# Report (markdown-friendly).
echo
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(go version | awk '{print $3}')"
echo "data: $DAYS days from $START, $EVENTS_PER_DAY events per source per day, $((raw_bytes / 1000000)) MB gzip, in $BENCH_DIR"
echo
echo "| run | job wall s | MB/s uncompressed per worker core | rows/s (input lines) | peak RSS per worker (MiB) |"
echo "|---|---|---|---|---|"
declare -A wall
for r in "${results[@]}"; do
	read -r n secs bytes lines rows rss <<<"$r"
	wall[$n]=$secs
	mbs=$(awk -v b="$bytes" -v s="$secs" -v n="$n" 'BEGIN {printf "%.1f", b / 1e6 / s / n}')
	rps=$(awk -v l="$lines" -v s="$secs" 'BEGIN {printf "%.0f", l / s}')
	mib=$(for k in $rss; do awk -v k="$k" 'BEGIN {printf "%.0f ", k / 1024}'; done)
	echo "| sluice, $n worker(s) x 1 core | $secs | $mbs | $rps | ${mib% } |"
	input_bytes=$bytes
	rows_written=$rows
done
declare -A refwall
for r in "${refs[@]}"; do
	read -r t secs mbs rps rss < <(jq -r '[.threads, .wall_s, .mb_per_s, .rows_per_s, .peak_rss_mb] | @tsv' <<<"$r")
	refwall[$t]=$secs
	echo "| duckdb ref, $t thread(s) | $secs | $(awk -v m="$mbs" -v n="$t" 'BEGIN {printf "%.1f", m / n}') | $rps | $(printf "%.0f" "$rss") |"
done
echo
echo "raw ref lines:"
for r in "${refs[@]}"; do echo "    $r"; done
echo
if [[ -n ${refwall[1]:-} ]]; then
	echo "ratio sluice 1 worker / duckdb 1 thread (throughput): $(awk -v a="${refwall[1]}" -v b="${wall[1]}" 'BEGIN {printf "%.2f", a / b}')x"
fi
if [[ -n ${refwall[2]:-} ]]; then
	echo "ratio sluice 2 workers / duckdb 2 threads (throughput): $(awk -v a="${refwall[2]}" -v b="${wall[2]}" 'BEGIN {printf "%.2f", a / b}')x"
fi
echo "ratio sluice 2 workers / 1 worker (throughput): $(awk -v a="${wall[1]}" -v b="${wall[2]}" 'BEGIN {printf "%.2f", a / b}')x"
echo "rows written: $rows_written"
echo "oracle: $oracle_last"
