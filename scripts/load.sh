#!/usr/bin/env bash
# load.sh is `make load`: it starts the whole system as `make run` does, but afresh, in a
# private data folder and on private ports, runs the load test against it (loadtest/,
# docs/load.md), prints the figures and stops everything. Arguments go to the load
# test (e.g. -n 50 -rate 10); the folder and ports can be changed with
#   PMO_LOAD_DIR (.data-load), PMO_LOAD_TEMPORAL_PORT (17332), PMO_LOAD_PG_PORT (55435),
#   PMO_LOAD_HTTP_ADDR (127.0.0.1:18080).
# The folder is emptied at the start of each run and kept after it, with the logs.
# PMO_LOAD_TEMPORAL_DB=memory runs the dev server without its SQLite file, to compare;
# PMO_LOAD_MODELS=1 prints the models fitted on the run's history at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

export PMO_DATA_DIR=${PMO_LOAD_DIR:-.data-load}
export PMO_HTTP_ADDR=${PMO_LOAD_HTTP_ADDR:-127.0.0.1:18080}
tport=${PMO_LOAD_TEMPORAL_PORT:-17332}
pgport=${PMO_LOAD_PG_PORT:-55435}

# Afresh: a run must not find the migrations of the one before.
fresh_dir "$PMO_DATA_DIR"
PMO_DATA_DIR=$fresh
mkdir -p "$PMO_DATA_DIR/logs" "$PMO_DATA_DIR/temporal"
export PMO_CONNECTOR_BIN=$PWD/bin/connector

pids=()
trap pmo_stop EXIT
trap 'exit 130' INT TERM

log "building bin/"
go build -o bin/ ./worker ./web ./starter ./connector ./loadtest
temporal_db=(--db-filename "$PMO_DATA_DIR/temporal/temporal.db" "${temporal_sqlite[@]}")
[ "${PMO_LOAD_TEMPORAL_DB:-file}" = memory ] && temporal_db=()
temporal_start "$tport" "$PMO_DATA_DIR/logs/temporal.log" --headless "${temporal_db[@]}"
export TEMPORAL_ADDRESS=127.0.0.1:$tport
# Not in $(...): pg_start sets PG_STARTED, which pmo_stop reads.
# The URL holds the database password: only this user may read it.
install -m 600 /dev/null "$PMO_DATA_DIR/database_url"
pg_start "$pgdir" "$pgport" pmo >"$PMO_DATA_DIR/database_url"
DATABASE_URL=$(cat "$PMO_DATA_DIR/database_url")
export DATABASE_URL

bin/starter migrate
bin/starter seed
PMO_API_KEY=$(bin/starter apikey create -name "make load" -role operator 2>/dev/null)
export PMO_API_KEY
bin/worker >"$PMO_DATA_DIR/logs/worker.log" 2>&1 &
pids+=($!)
bin/web >"$PMO_DATA_DIR/logs/web.log" 2>&1 &
pids+=($!)
bin/starter fleet start
pmo_wait_ready "see $PMO_DATA_DIR/logs/web.log"

log "load test; the system's logs are in $PMO_DATA_DIR/logs"
echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
bin/loadtest -url "http://$PMO_HTTP_ADDR" -data "$PMO_DATA_DIR" "$@" || status=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# With PMO_LOAD_MODELS=1, the rate and resource models fitted on what the run recorded:
# the resource model is then measured on this run's connectors, each held to its size's
# CPU and memory where the machine allows (docs/planning.md).
if [ "${PMO_LOAD_MODELS:-}" = 1 ]; then
	bin/starter models || status=$?
fi
exit "$status"
