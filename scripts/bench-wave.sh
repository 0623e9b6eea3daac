#!/usr/bin/env bash
# bench-wave.sh is `make bench-wave`: one planned wave of 10,000 demo VMs across the
# demo's three sites, submitted with one call, on Temporal's production server with
# PostgreSQL (as make test-cluster runs it), two workers, the web server and the
# connectors the fleet starts. It starts afresh (Temporal's databases, PMO's database,
# the demo seed with -vms 10000 and its disk images); then `loadtest wave` (ARGS)
# plans, submits and follows the wave and reads the histories. docs/scaling.md keeps
# the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

export PMO_DATA_DIR=${PMO_WAVE_DIR:-.data-wave}
export PMO_HTTP_ADDR=${PMO_WAVE_HTTP_ADDR:-127.0.0.1:18083}
tport=${PMO_WAVE_TEMPORAL_PORT:-17553}
pgport=${PMO_WAVE_PG_PORT:-55438}
workers=${PMO_WAVE_WORKERS:-2}
vms=${PMO_WAVE_VMS:-10000}

fresh_dir "$PMO_DATA_DIR"
mkdir -p "$PMO_DATA_DIR/logs"
export PMO_CONNECTOR_BIN=$PWD/bin/connector
pids=()
TEMPORAL_SERVER_PID=""
cleanup() {
	set +e
	stop_processes
	cluster_stop
	pg_stop_started
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building bin/"
go build -o bin/ ./worker ./web ./starter ./connector ./loadtest
test_postgres "$PMO_DATA_DIR" "$pgport" pmo_wave
cluster_start "$PMO_DATA_DIR" "$tport" wave >/dev/null
export TEMPORAL_ADDRESS=127.0.0.1:$tport
bin/starter migrate >/dev/null
log "seeding $vms VMs and their disk images"
bin/starter seed -vms "$vms" -disks "$PMO_DATA_DIR/disks" >/dev/null
PMO_API_KEY=$(bin/starter apikey create -name "bench-wave" -role admin 2>/dev/null)
export PMO_API_KEY
worker_pids=()
for i in $(seq 1 "$workers"); do
	bin/worker >>"$PMO_DATA_DIR/logs/worker-$i.log" 2>&1 &
	pids+=($!)
	worker_pids+=($!)
done
bin/web >"$PMO_DATA_DIR/logs/web.log" 2>&1 &
pids+=($!)
bin/starter fleet start >/dev/null
pmo_wait_ready "see $PMO_DATA_DIR/logs/web.log"
log "loadtest wave -vms $vms $*"
bin/loadtest wave -url "http://$PMO_HTTP_ADDR" -vms "$vms" -worker-pids "$(IFS=,; echo "${worker_pids[*]}")" "$@"
