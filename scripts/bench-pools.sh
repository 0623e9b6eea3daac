#!/usr/bin/env bash
# bench-pools.sh is `make bench-pools`: PMO sharded into many pools on Temporal's
# production server with PostgreSQL (as make test-cluster runs it). It starts afresh:
# Temporal's databases, PMO's database, the demo seed (for its SLA tiers), two
# workers and the web server; then `loadtest pools` (ARGS, default 20 pools of 100
# external connectors and 1,000 planned migrations) sets the pools up, runs them
# under load and judges every fleet's history. docs/scaling.md keeps the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

export PMO_DATA_DIR=${PMO_POOLS_DIR:-.data-pools}
export PMO_HTTP_ADDR=${PMO_POOLS_HTTP_ADDR:-127.0.0.1:18082}
tport=${PMO_POOLS_TEMPORAL_PORT:-17543}
pgport=${PMO_POOLS_PG_PORT:-55437}
workers=${PMO_POOLS_WORKERS:-2}

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
test_postgres "$PMO_DATA_DIR" "$pgport" pmo_pools
cluster_start "$PMO_DATA_DIR" "$tport" pools >/dev/null
export TEMPORAL_ADDRESS=127.0.0.1:$tport
bin/starter migrate >/dev/null
bin/starter seed -disks "$PMO_DATA_DIR/disks" >/dev/null
PMO_API_KEY=$(bin/starter apikey create -name "bench-pools" -role admin 2>/dev/null)
export PMO_API_KEY
for i in $(seq 1 "$workers"); do
	bin/worker >>"$PMO_DATA_DIR/logs/worker-$i.log" 2>&1 &
	pids+=($!)
done
# One key speaks for 2,000 connectors here, where each appliance would have its own:
# the per-key rate limit is raised so that it does not pace the benchmark.
PMO_RATE_LIMIT=1000 PMO_RATE_BURST=2000 bin/web >"$PMO_DATA_DIR/logs/web.log" 2>&1 &
pids+=($!)
# The load test starts the pools' fleets itself: the web server is waited for until it
# answers, not until a fleet does.
pmo_wait_ready "see $PMO_DATA_DIR/logs/web.log" /healthz
log "loadtest pools $*"
bin/loadtest pools -url "http://$PMO_HTTP_ADDR" "$@"
