#!/usr/bin/env bash
# run.sh is `make run`: it brings up the whole system in the foreground, starting a
# Temporal dev server and a private PostgreSQL cluster unless TEMPORAL_ADDRESS and
# DATABASE_URL are given. Ctrl-C stops everything it started; the data stays in
# PMO_DATA_DIR (default .data) for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

export PMO_DATA_DIR=${PMO_DATA_DIR:-.data}
mkdir -p "$PMO_DATA_DIR/logs"
PMO_DATA_DIR=$(cd "$PMO_DATA_DIR" && pwd)
export PMO_CONNECTOR_BIN=${PMO_CONNECTOR_BIN:-$PWD/bin/connector}
export PMO_HTTP_ADDR=${PMO_HTTP_ADDR:-127.0.0.1:8080}

pgdir=""
pids=()
trap pmo_stop EXIT
trap 'exit 130' INT TERM

log "building bin/"
go build -o bin/ ./worker ./web ./starter ./connector

ui=${TEMPORAL_UI_URL:-}
if [ -z "${TEMPORAL_ADDRESS:-}" ]; then
	mkdir -p "$PMO_DATA_DIR/temporal"
	temporal_start 7233 "$PMO_DATA_DIR/logs/temporal.log" \
		--ui-ip 127.0.0.1 --ui-port 8233 --db-filename "$PMO_DATA_DIR/temporal/temporal.db" "${temporal_sqlite[@]}"
	export TEMPORAL_ADDRESS=127.0.0.1:7233
	ui=http://127.0.0.1:8233
fi
if [ -z "${DATABASE_URL:-}" ]; then
	pgdir=$(pg_dir "$PMO_DATA_DIR/postgres")
	# Not in $(...): pg_start sets PG_STARTED, which cleanup reads.
	# The URL holds the database password: only this user may read it.
	install -m 600 /dev/null "$PMO_DATA_DIR/database_url"
	pg_start "$pgdir" 55432 pmo >"$PMO_DATA_DIR/database_url"
	DATABASE_URL=$(cat "$PMO_DATA_DIR/database_url")
	export DATABASE_URL
fi

bin/starter migrate
bin/starter seed
# The first start makes an admin API key and keeps it in the data folder, readable by
# this user only, so that later runs can say where it is. -first makes none when the
# database has keys already (DATABASE_URL given, or the file removed).
keyfile=$PMO_DATA_DIR/admin.key
newkey=""
if [ ! -s "$keyfile" ]; then
	(umask 077 && bin/starter apikey create -first -name "local admin (make run)" -role admin >"$keyfile.new")
	if [ -s "$keyfile.new" ]; then
		mv "$keyfile.new" "$keyfile"
		newkey=$(cat "$keyfile")
	else
		rm -f "$keyfile.new"
	fi
fi
# Each process logs to the terminal, prefixed, and to its file in the logs folder. The
# process substitution keeps $! the process itself, so that cleanup can stop it.
PMO_METRICS_ADDR=${PMO_METRICS_ADDR:-127.0.0.1:9464} bin/worker > >(tee -a "$PMO_DATA_DIR/logs/worker.log" | sed -u 's/^/worker | /') 2>&1 &
pids+=($!)
bin/web > >(tee -a "$PMO_DATA_DIR/logs/web.log" | sed -u 's/^/web    | /') 2>&1 &
pids+=($!)
bin/starter fleet start
# Ready means the API serves every route: Temporal and PostgreSQL answer, and a worker
# answers the fleet. The banner comes then, so that what it says to try works at once.
pmo_wait_ready "see its output above"

ui=${ui:-"your Temporal cluster's Web UI"}
if [ -n "$newkey" ]; then
	keymsg="$newkey
                     (a new admin key, kept in $keyfile; every call but /healthz and /readyz needs a key)"
elif [ -s "$keyfile" ]; then
	keymsg="the admin key is in $keyfile"
else
	keymsg="the database has keys from before; make one with: bin/starter apikey create -name NAME -role admin"
fi
cat >&2 <<MSG

  PMO is running.
    Dashboard:       http://$PMO_HTTP_ADDR/ (sign in with the API key)
    API:             http://$PMO_HTTP_ADDR
    API key:         $keymsg
    Try:             export PMO_API_KEY=\$(cat $keyfile)
                     curl -s -H "Authorization: Bearer \$PMO_API_KEY" http://$PMO_HTTP_ADDR/connectors
    Temporal Web UI: $ui/namespaces/${TEMPORAL_NAMESPACE:-default}/workflows
    Metrics:         http://${PMO_METRICS_ADDR:-127.0.0.1:9464}/metrics (worker), http://$PMO_HTTP_ADDR/metrics (web, with the key),
                     connectors' in $PMO_DATA_DIR/prometheus/*.json (Prometheus file_sd)
    Logs:            $PMO_DATA_DIR/logs
  Ctrl-C stops everything; the data stays for the next run.

MSG
wait
