#!/usr/bin/env bash
# bench-transform.sh: the mobile-user-daily job on generated Segment logs,
# run by real worker processes (one core each) against a private
# redis-server, beside the DuckDB reference transform of ../shared/refbench
# on the same data in the same session; each table is checked by
# refbench's oracle.
#
#   scripts/bench-transform.sh                  # the two 1 GB scenarios
#   SCENARIOS="1day" scripts/bench-transform.sh # one of them
#   SCENARIOS="10gb" scripts/bench-transform.sh # a 10 GB single date, 1 and 2 workers
#
# Scenarios (data generated once into $BENCH_DIR/<scenario>/raw, seed 1,
# -malformed-rate 0 because the DuckDB reference aborts on the generator's
# invalid timestamps; 24 files per source and received day, as Segment's
# hourly-ish batches):
#   1day  about 1 GB of events of one Pacific date (window of 1 date)
#   3day  about 1 GB of events over 3 Pacific dates (window of 3 dates)
#   10gb  about 10 GB of events of one date (no DuckDB run: it needs ~25 GB)
#
# For each scenario: Sluice with 1 worker process, then 2 (each
# -concurrency 1, GOMAXPROCS=1, -task-check-interval 50ms -retry-delay 1s, a
# private -temp-dir, no HTTP port unless profiling; the worker's defaults
# otherwise, -memory-limit 192MiB among them), DuckDB
# with 1 thread, the oracle on both Sluice tables. Reported: the job step's
# wall time (its duration_seconds in `scheduler show -o json`), MB/s of uncompressed input per
# worker core, peak RSS of each worker (VmHWM), output bytes, the speed-up
# of 2 workers over 1, the ratio to DuckDB, and the parallelism the plan
# made available (sum of the transform tasks' seconds over the longest
# task's, from the 1-worker run's log: what many workers could use), and
# the model of the fleet (`scheduler replay`) from each run, with each
# run's prediction for the other's fleet against its measured time.
#
# Environment: BENCH_DIR (default /tmp/sluice-bench; data is reused),
# SCENARIOS (default "1day 3day"), SLUICE_TARGET_FILE_BYTES and
# SLUICE_SHARD_BYTES (default: the workflow's), REFBENCH
# (../shared/refbench), REF and ORACLE (binaries, built when absent),
# SKIP_REF=1 to skip DuckDB, BIN=DIR to run the scheduler and worker
# binaries in DIR instead of building them (to compare builds side by
# side), WORKERS (default "1 2") the worker counts, PLAN_MIN_TASKS (the
# workers' -plan-min-tasks, default 16: the fleet the plan cuts tasks
# for), PROFILE_SECONDS=N to take an N-second CPU
# profile of the 1-worker run (from the worker's /debug/pprof; written to
# $BENCH_DIR/<scenario>/run-1/cpu.prof, read with `go tool pprof -top`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/sluice-bench}
SCENARIOS=${SCENARIOS:-1day 3day}
REFBENCH=${REFBENCH:-$root/../shared/refbench}
REF=${REF:-/tmp/ref}
ORACLE=${ORACLE:-/tmp/oracle}
START=2024-03-08

log() { printf '== %s\n' "$*" >&2; }

bin=${BIN:-$BENCH_DIR/bin}
mkdir -p "$bin"
if [[ -z ${BIN:-} ]]; then
	log "building scheduler and worker"
	(cd "$root" && go build -o "$bin/" ./cmd/scheduler ./cmd/worker)
fi
for tool in ref oracle; do
	var=${tool^^}
	if [[ ! -x ${!var} ]]; then
		log "building $tool from $REFBENCH (first build downloads DuckDB)"
		(cd "$REFBENCH" && go build -o "${!var}" "./$tool")
	fi
done

# scenario NAME: sets days and events (per source per day) of a scenario.
scenario() {
	case $1 in
	1day) days=1 events=406000 ;;
	3day) days=3 events=135500 ;;
	10gb) days=1 events=4060000 ;;
	*) echo "unknown scenario $1" >&2; exit 2 ;;
	esac
	end=$(date -u -d "$START + $((days - 1)) days" +%F)
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

# A private redis-server on a free port.
port=$(free_port)
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
export SLUICE_LOG_FORMAT=text

# run_sluice DIR N: the whole workflow with N worker processes on DIR/raw;
# prints "N wall_s input_bytes rows out_bytes files parallelism rss_kib..."
# and leaves the table in DIR/run-N/out.
run_sluice() {
	local data=$1 n=$2 dir=$1/run-$2
	rm -rf "$dir" && mkdir -p "$dir"
	redis-cli -p "$port" flushall >/dev/null
	export SLUICE_RAW=file://$data/raw SLUICE_OUTPUT=file://$dir/out SLUICE_CATALOG=file://$dir/catalog SLUICE_SCRATCH=file://$dir/scratch
	workers=()
	local http=() profiling=
	if [[ -n ${PROFILE_SECONDS:-} && $n == 1 ]]; then
		profiling=$(free_port)
		http=(-http "127.0.0.1:$profiling")
	fi
	for i in $(seq "$n"); do
		GOMAXPROCS=1 "$bin/worker" -concurrency 1 -http "" "${http[@]}" -task-check-interval 50ms -retry-delay 1s \
			-plan-min-tasks "${PLAN_MIN_TASKS:-16}" -temp-dir "$dir" >"$dir/worker-$i.log" 2>&1 &
		workers+=($!)
	done
	# The plan counts the live fleet: wait until every worker is serving.
	for w in $(seq "$n"); do
		for _ in $(seq 100); do grep -q "worker started" "$dir/worker-$w.log" && break; sleep 0.05; done
	done
	local curl_pid=
	if [[ -n $profiling ]]; then
		curl -sf -o "$dir/cpu.prof" "http://127.0.0.1:$profiling/debug/pprof/profile?seconds=$PROFILE_SECONDS" &
		curl_pid=$!
	fi
	"$bin/scheduler" start -start "$START" -end "$end" -wait >"$dir/start.log" 2>&1 ||
		{ cat "$dir/start.log" >&2; return 1; }
	[[ -z $curl_pid ]] || wait "$curl_pid" || log "profile failed"
	local id
	id=$(awk '/^started run/ {print $3}' "$dir/start.log")
	"$bin/scheduler" show -o json "$id" >"$dir/show.json"
	local rss=()
	for p in "${workers[@]}"; do
		rss+=("$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status")")
		kill "$p"
	done
	for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done
	workers=()
	local took sum par
	took=$(jq -r '.steps[] | select(.name == "mobile-user-daily") | .duration_seconds' "$dir/show.json")
	sum=$(jq -c '.steps[] | select(.name == "mobile-user-daily") | .summary' "$dir/show.json")
	# Parallelism available: the transform tasks' seconds, summed, over the
	# longest one's.
	par=$(cat "$dir"/worker-*.log | awk '/msg="task done" type=transform:/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^seconds=/) { v = substr($i, 9) + 0; sum += v; if (v > mx) mx = v } }
		END { if (mx > 0) printf "%.1f", sum / mx; else print 0 }')
	printf '%s %.3f %s %s %s %s %s %s\n' "$n" "$took" \
		"$(jq -r .input_bytes <<<"$sum")" "$(jq -r .rows_written <<<"$sum")" "$(jq -r .output_bytes <<<"$sum")" \
		"$(find "$dir/out" -path '*date=*' -name '*.parquet' | wc -l)" "$par" "${rss[*]}"
}

oracle() { # oracle DATA TABLE: the oracle's last line
	"$ORACLE" -in "$1/raw" -out "$2" -start "$START" -end "$end" 2>&1 | tail -1 || true
}

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(go version | awk '{print $3}'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: SLUICE_TARGET_FILE_BYTES=${SLUICE_TARGET_FILE_BYTES:-default} SLUICE_SHARD_BYTES=${SLUICE_SHARD_BYTES:-default} PLAN_MIN_TASKS=${PLAN_MIN_TASKS:-16}"
for sc in $SCENARIOS; do
	scenario "$sc"
	data=$BENCH_DIR/$sc
	if [[ ! -d $data/raw/segment-logs ]]; then
		log "$sc: generating $days day(s) x $events events per source"
		mkdir -p "$data"
		"$bin/scheduler" generate -raw "file://$data/raw" -seed 1 -start "$START" -days "$days" \
			-events-per-day "$events" -files-per-day 24 -malformed-rate 0 | sed -n 1p >&2
	fi
	raw_bytes=$(find "$data/raw" -name '*.gz' -printf '%s\n' | awk '{s+=$1} END {print s}')
	echo
	echo "### $sc: window $START..$end, $(find "$data/raw" -name '*.gz' | wc -l) objects, $((raw_bytes / 1000000)) MB gzip"
	echo
	echo "| run | job wall s | MB/s per worker core | peak RSS per worker (MiB) | files | output MB | parallelism available | oracle |"
	echo "|---|---|---|---|---|---|---|---|"
	declare -A wall=()
	for n in ${WORKERS:-1 2}; do
		log "$sc: sluice, $n worker(s)"
		r=$(run_sluice "$data" "$n")
		log "  $r"
		read -r _ secs bytes rows out files par rss <<<"$r"
		wall[$n]=$secs
		mbs=$(awk -v b="$bytes" -v s="$secs" -v n="$n" 'BEGIN {printf "%.1f", b / 1e6 / s / n}')
		mib=$(for k in $rss; do awk -v k="$k" 'BEGIN {printf "%.0f ", k / 1024}'; done)
		o=$(oracle "$data" "$data/run-$n/out")
		echo "| sluice, $n worker(s) x 1 core | $secs | $mbs | ${mib% } | $files | $(awk -v o="$out" 'BEGIN {printf "%.1f", o / 1e6}') | $par | \`$o\` |"
		sluice_out=$out
		input_bytes=$bytes
	done
	if [[ ${SKIP_REF:-} != 1 && $sc != 10gb ]]; then
		log "$sc: duckdb reference, 1 thread"
		rm -rf "$data/ref"
		refline=$("$REF" -in "$data/raw" -out "$data/ref" -start "$START" -end "$end" -format parquet -threads 1 | tail -1)
		read -r rsecs rmbs rrss < <(jq -r '[.wall_s, .mb_per_s, .peak_rss_mb] | @tsv' <<<"$refline")
		ref_out=$(find "$data/ref" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')
		echo "| duckdb ref, 1 thread | $rsecs | $rmbs | $(printf "%.0f" "$rrss") | $(find "$data/ref" -name '*.parquet' | wc -l) | $(awk -v o="$ref_out" 'BEGIN {printf "%.1f", o / 1e6}') | | |"
		echo
		echo "ref: \`$refline\`"
		echo
		echo "- sluice 1 worker / duckdb 1 thread (throughput): $(awk -v a="$rsecs" -v b="${wall[1]}" 'BEGIN {printf "%.2f", a / b}')x"
		echo "- sluice output / duckdb output (bytes): $(awk -v a="$sluice_out" -v b="$ref_out" 'BEGIN {printf "%.3f", a / b}')"
	fi
	[[ -z ${wall[1]:-} || -z ${wall[2]:-} ]] || echo "- sluice 2 workers / 1 worker (throughput): $(awk -v a="${wall[1]}" -v b="${wall[2]}" 'BEGIN {printf "%.2f", a / b}')x"
	echo "- input: $((input_bytes / 1000000)) MB uncompressed"
	# The model of the fleet: each run's task graph replayed on simulated
	# fleets, calibrated on that run; each run's prediction for the other
	# run's fleet against what the other run measured.
	for n in ${WORKERS:-1 2}; do
		"$bin/scheduler" replay -run "$data/run-$n/show.json" -o json "$data/run-$n"/worker-*.log >"$data/run-$n/replay.json" ||
			{ log "replay of run-$n failed"; continue; }
		echo "- model from the $n-worker run ($(jq -r '"\(.tasks) tasks, \(.work_seconds | floor) s of work, longest \(.longest_task_seconds * 100 | round / 100) s, dispatch \(.dispatch_seconds * 1000 | round) ms"' "$data/run-$n/replay.json")):" \
			"$(jq -r '[.predictions[] | "\(.workers): \(.seconds * 100 | round / 100) s (\(.speed_up * 100 | round / 100)x)"] | join(", ")' "$data/run-$n/replay.json")"
	done
	if [[ -f $data/run-1/replay.json && -f $data/run-2/replay.json ]]; then
		for pair in "1 2" "2 1"; do
			read -r from to <<<"$pair"
			pred=$(jq -r --argjson n "$to" '.predictions[] | select(.workers == $n) | .seconds' "$data/run-$from/replay.json")
			[[ -n $pred ]] || continue
			echo "- model check: the $from-worker run predicts $to workers at $(printf %.2f "$pred") s; measured ${wall[$to]} s ($(awk -v p="$pred" -v m="${wall[$to]}" 'BEGIN {printf "%+.1f", (p - m) / m * 100}') %)"
		done
	fi
done
