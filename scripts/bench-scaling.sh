#!/usr/bin/env bash
# bench-scaling.sh is `make bench-scaling`: migrations per second against the number of
# workers, on Temporal's production server with PostgreSQL (as make test-cluster runs
# it), and the memory of a worker and a connector at rest and under load. For each
# worker count (PMO_SCALING_WORKERS, default "1 2 4") it starts afresh: Temporal's
# databases, PMO's database, the demo seed, the workers, the web server and the fleet;
# then the load test (loadtest/, ARGS, default -n 200 -rate 40) and a sampler of the
# processes' resident memory. It prints one line each; docs/scaling.md keeps the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

export PMO_DATA_DIR=${PMO_SCALING_DIR:-.data-scaling}
export PMO_HTTP_ADDR=${PMO_SCALING_HTTP_ADDR:-127.0.0.1:18081}
tport=${PMO_SCALING_TEMPORAL_PORT:-17533}
pgport=${PMO_SCALING_PG_PORT:-55436}
workers=${PMO_SCALING_WORKERS:-1 2 4}
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-n 200 -rate 40)

fresh_dir "$PMO_DATA_DIR"
base=$fresh
export PMO_CONNECTOR_BIN=$PWD/bin/connector
pids=()
TEMPORAL_SERVER_PID=""
stop_round() {
	stop_processes
	cluster_stop
}
cleanup() {
	set +e
	stop_round
	pg_stop_started
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building bin/"
go build -o bin/ ./worker ./web ./starter ./connector ./loadtest
# Not in $(...): pg_start sets PG_STARTED, which cleanup reads.
pg_start "$pgdir" "$pgport" pmo_scaling >/dev/null
# The disk images are written once and shared by the rounds.
disks=$base/disks

# rss_mib prints the resident memory of the processes, in MiB, summed.
rss_mib() {
	local p kb=0 v
	for p in "$@"; do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		kb=$((kb + ${v:-0}))
	done
	echo $((kb / 1024))
}

printf '%-8s %-26s %-14s %-22s %-22s %s\n' workers throughput 'POST p99' 'worker MiB rest/peak' 'connector MiB rest/peak' errors
for n in $workers; do
	export PMO_DATA_DIR=$base/w$n
	mkdir -p "$PMO_DATA_DIR/logs"
	db=pmo_scaling_w$n
	DATABASE_URL=$(pg_start "$pgdir" "$pgport" "$db")
	export DATABASE_URL
	cluster_start "$PMO_DATA_DIR" "$tport" "scaling_w$n" >/dev/null
	export TEMPORAL_ADDRESS=127.0.0.1:$tport
	bin/starter migrate >/dev/null
	bin/starter seed -disks "$disks" >/dev/null
	PMO_API_KEY=$(bin/starter apikey create -name "bench-scaling" -role operator 2>/dev/null)
	export PMO_API_KEY
	worker_pids=()
	for i in $(seq 1 "$n"); do
		bin/worker >>"$PMO_DATA_DIR/logs/worker-$i.log" 2>&1 &
		pids+=($!)
		worker_pids+=($!)
	done
	bin/web >"$PMO_DATA_DIR/logs/web.log" 2>&1 &
	pids+=($!)
	bin/starter fleet start >/dev/null
	pmo_wait_ready "see $PMO_DATA_DIR/logs/web.log"
	sleep 10 # the first tick warms the connectors
	conn_pid=$(cat "$(ls "$PMO_DATA_DIR"/connectors/*.pid | head -1)")
	worker_rest=$(rss_mib "${worker_pids[0]}")
	conn_rest=$(rss_mib "$conn_pid")
	peak_file=$PMO_DATA_DIR/peak
	echo "0 0" >"$peak_file"
	(
		wp=0 cp=0
		while true; do
			w=$(rss_mib "${worker_pids[0]}")
			c=$(rss_mib "$conn_pid")
			[ "$w" -gt "$wp" ] && wp=$w
			[ "$c" -gt "$cp" ] && cp=$c
			echo "$wp $cp" >"$peak_file"
			sleep 0.5
		done
	) &
	sampler=$!
	out=$PMO_DATA_DIR/loadtest.out
	bin/loadtest -url "http://$PMO_HTTP_ADDR" -data "$PMO_DATA_DIR" -prefix "w$n-" "${args[@]}" >"$out" 2>&1 || true
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	read -r worker_peak conn_peak <"$peak_file"
	throughput=$(sed -n 's/^throughput *//p' "$out" | cut -d, -f1)
	p99=$(awk '$1 == "POST" {print $8, $9}' "$out")
	errors=$(sed -n 's/^errors *//p' "$out")
	printf '%-8s %-26s %-14s %-22s %-22s %s\n' "$n" "$throughput" "$p99" "$worker_rest / $worker_peak" "$conn_rest / $conn_peak" "$errors"
	stop_round
done
