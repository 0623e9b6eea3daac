# shellcheck shell=bash
# Shared helpers for run.sh and test.sh: find and start the PostgreSQL cluster and the
# Temporal dev server that PMO needs when none is given.

TEMPORAL_CLI_VERSION=v1.5.1

log() { printf 'pmo: %s\n' "$*" >&2; }
die() { printf 'pmo: %s\n' "$*" >&2; exit 1; }

# pg_bin finds the directory holding initdb and pg_ctl: on PATH, or Debian's
# /usr/lib/postgresql/<version>/bin, newest first.
pg_bin() {
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
		return
	fi
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return
		fi
	done
	die "PostgreSQL's server binaries (initdb, pg_ctl) are not installed. Install them with
    apt-get install postgresql        # Debian, Ubuntu
    dnf install postgresql-server     # Fedora, RHEL
    brew install postgresql           # macOS
or set DATABASE_URL to a PostgreSQL server you already run."
}

# as_pg runs a command as the cluster's owner. initdb and postgres refuse to run as
# root, so as root the cluster belongs to the unprivileged user "postgres".
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		# From /, which the postgres user can always enter.
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# pg_dir prints the data folder for a cluster. It is <want> unless we are root and the
# postgres user cannot reach it (a home or temp folder closed to others); then the
# cluster lives in /var/tmp, keyed by the wanted path so the same checkout finds it again.
pg_dir() {
	local want=$1
	mkdir -p "$(dirname "$want")"
	want=$(cd "$(dirname "$want")" && pwd)/$(basename "$want")
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || die "running as root needs an unprivileged 'postgres' user to own the cluster (useradd -r postgres), or set DATABASE_URL"
		if ! runuser -u postgres -- test -x "$(dirname "$want")"; then
			local key
			key=$(printf '%s' "$want" | sha256sum | cut -c1-12)
			want=/var/tmp/pmo-postgres-$key
			log "the postgres user cannot reach this checkout; the cluster lives in $want"
		fi
	fi
	echo "$want"
}

# pg_start makes (first time) and starts a private cluster listening only on
# 127.0.0.1:<port>, with trust auth for the local superuser "pmo", and creates database
# <db>. It prints the DATABASE_URL. It leaves an already running cluster alone and sets
# PG_STARTED=1 only when it started one.
pg_start() {
	local dir=$1 port=$2 db=$3 bin
	bin=$(pg_bin)
	PG_STARTED=0
	if [ ! -f "$dir/PG_VERSION" ]; then
		log "creating a PostgreSQL cluster in $dir"
		mkdir -p "$dir"
		[ "$(id -u)" = 0 ] && chown postgres: "$dir"
		chmod 700 "$dir"
		as_pg "$bin/initdb" -D "$dir" -U pmo --auth=trust --encoding=UTF8 --no-instructions >"$dir.initdb.log" 2>&1 ||
			die "initdb failed; see $dir.initdb.log"
	fi
	if ! as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
		port_open "$port" && die "port $port is taken by another server; stop it, or set DATABASE_URL"
		log "starting PostgreSQL on 127.0.0.1:$port"
		as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
			-o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null ||
			die "PostgreSQL did not start; see $dir/server.log"
		PG_STARTED=1
	fi
	local psql="$bin/psql"
	[ -x "$psql" ] || psql=psql
	if ! "$psql" -h 127.0.0.1 -p "$port" -U pmo -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
		"$psql" -h 127.0.0.1 -p "$port" -U pmo -d postgres -qc "CREATE DATABASE \"$db\"" >/dev/null || die "could not create database $db"
	fi
	echo "postgres://pmo@127.0.0.1:$port/$db?sslmode=disable"
}

# pg_stop stops the cluster in <dir>.
pg_stop() {
	as_pg "$(pg_bin)/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1 || true
}

# temporal_cli builds the pinned Temporal CLI (dev server and Web UI) into .bin from the
# Go module proxy, once.
temporal_cli() {
	local bin=$PWD/.bin/temporal
	if [ ! -x "$bin" ] || [ "$(cat .bin/temporal.version 2>/dev/null)" != "$TEMPORAL_CLI_VERSION" ]; then
		log "building the Temporal CLI $TEMPORAL_CLI_VERSION (about two minutes, once)"
		GOBIN=$PWD/.bin go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION" ||
			die "could not build the Temporal CLI"
		echo "$TEMPORAL_CLI_VERSION" >.bin/temporal.version
	fi
	echo "$bin"
}

# chromium_bin prints the Chromium that the browser test drives: CHROMIUM, or Debian's
# chromium, which it installs from Debian's packages when it is missing and it can
# (as root, with apt-get).
chromium_bin() {
	if [ -n "${CHROMIUM:-}" ]; then
		echo "$CHROMIUM"
		return
	fi
	local b
	for b in chromium chromium-browser google-chrome; do
		type -P "$b" >/dev/null && { type -P "$b"; return; }
	done
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing Chromium from Debian's packages for the browser test (once)"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2 ||
			die "could not install chromium; install it yourself or set CHROMIUM"
		type -P chromium
		return
	fi
	die "the browser test needs Chromium: apt-get install chromium, or set CHROMIUM"
}

# port_open reports whether something accepts TCP connections on 127.0.0.1:<port>.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# temporal_sqlite keeps the dev server's SQLite file in WAL mode with synchronous=NORMAL:
# a commit then writes the log without waiting for fsync. With SQLite's defaults every
# workflow task waits for one, which made POST /migrations take seconds under load
# (docs/load.md). A crash of the process loses nothing; one of the machine may lose the
# last commits, which a development server can afford.
temporal_sqlite=(--sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal)

# temporal_start starts a dev server on 127.0.0.1:<port> in the background, logging to
# <logfile>, and waits until it serves. Extra arguments go to `temporal server start-dev`.
# It sets TEMPORAL_PID.
temporal_start() {
	local port=$1 logfile=$2 cli
	shift 2
	cli=$(temporal_cli)
	port_open "$port" && die "port $port is taken; stop what runs there or set TEMPORAL_ADDRESS"
	log "starting the Temporal dev server on 127.0.0.1:$port"
	"$cli" server start-dev --ip 127.0.0.1 --port "$port" --log-level warn "$@" >"$logfile" 2>&1 &
	TEMPORAL_PID=$!
	local i
	for i in $(seq 1 120); do
		if "$cli" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1; then
			return
		fi
		kill -0 "$TEMPORAL_PID" 2>/dev/null || die "the Temporal dev server exited; see $logfile"
		sleep 0.5
	done
	die "the Temporal dev server did not answer within 60s; see $logfile"
}

# pmo_stop stops what run.sh or load.sh started: the processes in pids, the connectors
# the fleet started (their pid files in $PMO_DATA_DIR/connectors), the dev server in
# TEMPORAL_PID and, if PG_STARTED, the cluster in pgdir.
pmo_stop() {
	set +e # stop everything, whatever fails
	trap - EXIT INT TERM
	log "stopping"
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	# Connectors run in their own process groups so that they outlive a worker restart;
	# stopping the system stops them too. The fleet restarts them on the next run.
	local f
	for f in "$PMO_DATA_DIR"/connectors/*.pid; do
		[ -e "$f" ] || continue
		p=$(cat "$f")
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	[ -n "${TEMPORAL_PID:-}" ] && { kill "$TEMPORAL_PID" 2>/dev/null; wait "$TEMPORAL_PID" 2>/dev/null || true; }
	[ -n "$pgdir" ] && [ "${PG_STARTED:-0}" = 1 ] && pg_stop "$pgdir"
	log "stopped; data kept in $PMO_DATA_DIR"
}

# pmo_wait_ready waits up to 30 s for the web server on PMO_HTTP_ADDR to be ready; the
# argument says where to look if it is not.
pmo_wait_ready() {
	local i
	for i in $(seq 1 60); do
		curl -fs "http://$PMO_HTTP_ADDR/readyz" >/dev/null 2>&1 && return
		sleep 0.5
	done
	die "the web server did not become ready; $1"
}
