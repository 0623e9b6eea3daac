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
# 127.0.0.1:<port>, whose superuser "pmo" logs in with a password (scram-sha-256),
# generated at the first start and kept in <dir>.password, readable by this user only,
# and creates database <db>. It prints the DATABASE_URL, password included (write it
# to a file only this user can read). It leaves an already running cluster alone and
# sets PG_STARTED=1 only when it started one. A cluster made before passwords (trust
# auth, no <dir>.password) is used as it is.
pg_start() {
	local dir=$1 port=$2 db=$3 bin pwfile userinfo=pmo
	bin=$(pg_bin)
	PG_STARTED=0
	pwfile=$dir.password
	if [ ! -f "$dir/PG_VERSION" ]; then
		log "creating a PostgreSQL cluster in $dir"
		mkdir -p "$dir"
		[ "$(id -u)" = 0 ] && chown postgres: "$dir"
		chmod 700 "$dir"
		(umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$pwfile")
		# initdb reads the password as the cluster's owner, from a file only it can read.
		local tmp
		tmp=$(mktemp)
		cp "$pwfile" "$tmp"
		[ "$(id -u)" = 0 ] && chown postgres: "$tmp"
		as_pg "$bin/initdb" -D "$dir" -U pmo --auth=scram-sha-256 --pwfile="$tmp" --encoding=UTF8 --no-instructions >"$dir.initdb.log" 2>&1 ||
			{ rm -f "$tmp"; die "initdb failed; see $dir.initdb.log"; }
		rm -f "$tmp"
	fi
	if [ -f "$pwfile" ]; then
		PGPASSWORD=$(cat "$pwfile")
		export PGPASSWORD
		userinfo=pmo:$PGPASSWORD
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
	echo "postgres://$userinfo@127.0.0.1:$port/$db?sslmode=disable"
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

# test_postgres starts a private PostgreSQL cluster in <dir>/postgres on <port> with
# the database <db>, unless DATABASE_URL is set, and exports DATABASE_URL. Call it
# outside $(...): it sets pgdir and PG_STARTED for the caller's cleanup.
test_postgres() {
	[ -n "${DATABASE_URL:-}" ] && return
	pgdir=$(pg_dir "$1/postgres")
	# The URL holds the database password: only this user may read it.
	install -m 600 /dev/null "$1/database_url"
	pg_start "$pgdir" "$2" "$3" >"$1/database_url"
	DATABASE_URL=$(cat "$1/database_url")
	export DATABASE_URL
}

# TEMPORAL_SERVER_VERSION is the Temporal server that cluster mode builds from the Go
# module proxy, with its SQL schema tool.
TEMPORAL_SERVER_VERSION=v1.32.0

# temporal_server builds the pinned Temporal server and temporal-sql-tool into .bin,
# once, and prints the server's path (the tool is beside it).
temporal_server() {
	local dir=$PWD/.bin
	if [ ! -x "$dir/temporal-server" ] || [ ! -x "$dir/temporal-sql-tool" ] ||
		[ "$(cat "$dir/temporal-server.version" 2>/dev/null)" != "$TEMPORAL_SERVER_VERSION" ]; then
		log "building the Temporal server $TEMPORAL_SERVER_VERSION and its SQL tool (a few minutes, once)"
		local tmp
		tmp=$(mktemp -d)
		GOBIN=$tmp go install "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" ||
			die "could not build the Temporal server"
		mkdir -p "$dir"
		mv "$tmp/server" "$dir/temporal-server"
		mv "$tmp/sql" "$dir/temporal-sql-tool"
		rmdir "$tmp"
		echo "$TEMPORAL_SERVER_VERSION" >"$dir/temporal-server.version"
	fi
	echo "$dir/temporal-server"
}

# weed_bin prints SeaweedFS's weed, the S3-compatible object store that stands for the
# provider's cloud storage, building it into .bin/ from the tools module in
# scripts/seaweedfs when it is missing or that module changed. SeaweedFS's own go.mod
# has a replace directive, so `go install` refuses it; the tools module repeats it.
weed_bin() {
	local dir=$PWD/.bin want
	want=$(cat scripts/seaweedfs/go.mod scripts/seaweedfs/go.sum | sha256sum | cut -c1-16)
	if [ ! -x "$dir/weed" ] || [ "$(cat "$dir/weed.version" 2>/dev/null)" != "$want" ]; then
		log "building SeaweedFS's weed for the S3 object store (about 15 minutes on two cores, once)"
		mkdir -p "$dir"
		(cd scripts/seaweedfs && go build -o "$dir/weed" github.com/seaweedfs/seaweedfs/weed) ||
			die "could not build SeaweedFS"
		echo "$want" >"$dir/weed.version"
	fi
	echo "$dir/weed"
}

# weed_start starts SeaweedFS in the background (a master, a volume server, a filer,
# and the S3 gateway with its IAM API) on 127.0.0.1, the S3 API on <port> and the rest
# on the ports after it, keeping its data in <dir>, whose weed.log it logs to. Its one
# identity is the admin of S3_ACCESS_KEY and S3_SECRET_KEY, which makes buckets and the
# connectors' credentials. It waits until S3 answers and sets WEED_PID.
weed_start() {
	local dir=$1 port=$2 bin i
	bin=$(weed_bin)
	for i in 0 1 2 3 4 5 6 7; do
		port_open $((port + i)) && die "port $((port + i)) is taken; stop what runs there or set PMO_TEST_S3_PORT"
	done
	mkdir -p "$dir/data"
	printf '{"identities":[{"name":"pmo-admin","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
		"$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$dir/s3.json"
	log "starting SeaweedFS's S3 gateway on 127.0.0.1:$port"
	# Small volumes that grow one at a time: each bucket is a collection of its own.
	"$bin" server -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
		-s3 -s3.port="$port" -s3.port.grpc=$((port + 1)) -s3.config="$dir/s3.json" -s3.iam.readOnly=false \
		-s3.port.iceberg=0 -s3.port.lance=0 \
		-master.port=$((port + 2)) -master.port.grpc=$((port + 3)) -master.volumeSizeLimitMB=64 \
		-volume.port=$((port + 4)) -volume.port.grpc=$((port + 5)) -volume.max=0 \
		-filer -filer.port=$((port + 6)) -filer.port.grpc=$((port + 7)) >"$dir/weed.log" 2>&1 &
	WEED_PID=$!
	for i in $(seq 1 120); do
		# The gateway listens once its filer is up; the first bucket may still wait a
		# moment for a volume (testenv.ObjectStore retries).
		port_open "$port" && return
		kill -0 "$WEED_PID" 2>/dev/null || die "SeaweedFS exited; see $dir/weed.log"
		sleep 0.5
	done
	die "SeaweedFS's S3 gateway did not answer within 60s; see $dir/weed.log"
}

# cluster_start starts Temporal's server on PostgreSQL, as the compose stack runs it:
# the server of DATABASE_URL (its user and password, or PGPASSWORD) holds the
# databases temporal_<name> and temporal_<name>_visibility, which temporal-sql-tool
# creates afresh and brings to the server's schema. The frontend listens on
# 127.0.0.1:<port>, the other services on the ports after it; the config and the log go
# to <dir>. It registers the default namespace and waits until it serves, and sets
# TEMPORAL_SERVER_PID.
cluster_start() {
	local dir=$1 port=$2 name=$3 server url rest userinfo hostport user host pgport schema tool cli
	server=$(temporal_server)
	url=${DATABASE_URL#*://}
	rest=${url%%[/?]*}
	userinfo=pmo
	[[ $rest == *@* ]] && userinfo=${rest%%@*}
	hostport=${rest#*@}
	user=${userinfo%%:*}
	local pw=${PGPASSWORD:-}
	[[ $userinfo == *:* ]] && pw=${userinfo#*:}
	host=${hostport%%:*}
	pgport=5432
	[[ $hostport == *:* ]] && pgport=${hostport##*:}
	# The schema files are those of the module the server was built from.
	schema=$(go mod download -json "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')/schema/postgresql/v12
	[ -d "$schema" ] || die "no Temporal schema files in $schema"
	tool() { "$PWD/.bin/temporal-sql-tool" --plugin postgres12 --ep "$host" -p "$pgport" -u "$user" --pw "$pw" "$@"; }
	local db
	for db in "temporal_$name:temporal" "temporal_${name}_visibility:visibility"; do
		tool --db "${db%%:*}" drop-database -f --defaultdb postgres >/dev/null 2>&1 || true
		tool --db "${db%%:*}" create-database --defaultdb postgres >/dev/null ||
			die "could not create database ${db%%:*} on $host:$pgport"
		tool --db "${db%%:*}" setup-schema -v 0.0 >/dev/null 2>&1 || die "temporal-sql-tool setup-schema ${db%%:*} failed"
		tool --db "${db%%:*}" update-schema -d "$schema/${db#*:}/versioned" >/dev/null 2>&1 ||
			die "temporal-sql-tool update-schema ${db%%:*} failed"
	done
	mkdir -p "$dir"
	cat >"$dir/temporal.yaml" <<YAML
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
      sql: {pluginName: postgres12, databaseName: temporal_$name, connectAddr: "$host:$pgport", connectProtocol: tcp,
            user: "$user", password: "$pw", maxConns: 20, maxIdleConns: 20, maxConnLifetime: 1h}
    visibility:
      sql: {pluginName: postgres12, databaseName: temporal_${name}_visibility, connectAddr: "$host:$pgport", connectProtocol: tcp,
            user: "$user", password: "$pw", maxConns: 4, maxIdleConns: 4, maxConnLifetime: 1h}
global:
  membership: {maxJoinDuration: 30s, broadcastAddress: 127.0.0.1}
services:
  frontend: {rpc: {grpcPort: $port, membershipPort: $((port + 100)), bindOnLocalHost: true, httpPort: $((port + 10))}}
  history: {rpc: {grpcPort: $((port + 1)), membershipPort: $((port + 101)), bindOnLocalHost: true}}
  matching: {rpc: {grpcPort: $((port + 2)), membershipPort: $((port + 102)), bindOnLocalHost: true}}
  worker: {rpc: {grpcPort: $((port + 6)), membershipPort: $((port + 106)), bindOnLocalHost: true}}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active: {enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: "127.0.0.1:$port", httpAddress: "127.0.0.1:$((port + 10))"}
dcRedirectionPolicy: {policy: noop}
YAML
	port_open "$port" && die "port $port is taken; stop what runs there or set PMO_CLUSTER_PORT"
	log "starting the Temporal server $TEMPORAL_SERVER_VERSION on PostgreSQL $host:$pgport (temporal_$name) at 127.0.0.1:$port"
	"$server" --config-file "$dir/temporal.yaml" --allow-no-auth start >"$dir/temporal.log" 2>&1 &
	TEMPORAL_SERVER_PID=$!
	cli=$(temporal_cli)
	local i
	for i in $(seq 1 120); do
		"$cli" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1 && break
		kill -0 "$TEMPORAL_SERVER_PID" 2>/dev/null || die "the Temporal server stopped; see $dir/temporal.log"
		sleep 1
	done
	"$cli" operator namespace create --namespace default --retention 24h --address "127.0.0.1:$port" >/dev/null ||
		die "could not register the default namespace; see $dir/temporal.log"
	# The frontend serves a new namespace once its namespace cache has it.
	for i in $(seq 1 60); do
		"$cli" workflow list --namespace default --address "127.0.0.1:$port" --limit 1 >/dev/null 2>&1 && return
		sleep 1
	done
	die "the default namespace did not become ready; see $dir/temporal.log"
}

# cluster_stop stops the Temporal server that cluster_start started, if any.
cluster_stop() {
	[ -n "${TEMPORAL_SERVER_PID:-}" ] && kill "$TEMPORAL_SERVER_PID" 2>/dev/null && wait "$TEMPORAL_SERVER_PID" 2>/dev/null
	TEMPORAL_SERVER_PID=""
	true
}

# pg_stop_started stops the cluster in pgdir if this script started it (PG_STARTED).
pg_stop_started() {
	[ -n "${pgdir:-}" ] && [ "${PG_STARTED:-0}" = 1 ] && pg_stop "$pgdir"
	true
}

# test_stop is a test script's cleanup: it stops the dev server in TEMPORAL_PID, the
# object store in WEED_PID and, if this script started it, the cluster in pgdir.
test_stop() {
	set +e # stop everything, whatever fails
	[ -n "${TEMPORAL_PID:-}" ] && kill "$TEMPORAL_PID" 2>/dev/null && wait "$TEMPORAL_PID" 2>/dev/null
	[ -n "${WEED_PID:-}" ] && kill "$WEED_PID" 2>/dev/null && wait "$WEED_PID" 2>/dev/null
	pg_stop_started
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
# The CLI is TEMPORAL_CLI when it is set (test-ahead.sh's has a movable clock), else the
# pinned one. It sets TEMPORAL_PID.
temporal_start() {
	local port=$1 logfile=$2 cli
	shift 2
	cli=${TEMPORAL_CLI:-$(temporal_cli)}
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

# stop_processes stops the processes in pids and the connectors the fleet started
# (their pid files in $PMO_DATA_DIR/connectors), and empties pids. Connectors run in
# their own process groups so that they outlive a worker restart; stopping the system
# stops them too. The fleet restarts them on the next run.
stop_processes() {
	local p f
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
	for f in "$PMO_DATA_DIR"/connectors/*.pid; do
		[ -e "$f" ] || continue
		p=$(cat "$f")
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
}

# fresh_dir empties <dir> and the PostgreSQL cluster kept for it (stopped first), makes
# <dir> again, and sets fresh to its absolute path and pgdir to the cluster's folder: a
# run that must not find the data of the one before.
fresh_dir() {
	mkdir -p "$1"
	pgdir=$(pg_dir "$(cd "$1" && pwd)/postgres")
	pg_stop "$pgdir"
	rm -rf "$1" "$pgdir"
	mkdir -p "$1"
	fresh=$(cd "$1" && pwd)
}

# pmo_stop stops what run.sh or load.sh started: the processes in pids, the connectors
# the fleet started (their pid files in $PMO_DATA_DIR/connectors), the dev server in
# TEMPORAL_PID and, if PG_STARTED, the cluster in pgdir.
pmo_stop() {
	set +e # stop everything, whatever fails
	trap - EXIT INT TERM
	log "stopping"
	stop_processes
	[ -n "${TEMPORAL_PID:-}" ] && { kill "$TEMPORAL_PID" 2>/dev/null; wait "$TEMPORAL_PID" 2>/dev/null || true; }
	pg_stop_started
	log "stopped; data kept in $PMO_DATA_DIR"
}

# pmo_wait_ready waits up to 30 s for the web server on PMO_HTTP_ADDR to be ready
# (GET /readyz: Temporal and PostgreSQL answer and so does the pool's fleet), or to
# answer the path given as the second argument; the first says where to look if it
# does not.
pmo_wait_ready() {
	local i
	for i in $(seq 1 60); do
		curl -fs "http://$PMO_HTTP_ADDR${2:-/readyz}" >/dev/null 2>&1 && return
		sleep 0.5
	done
	die "the web server did not become ready; $1"
}

# clock_overlay writes a `go build -overlay` file into <dir> that patches the standard
# library's time.Now to add PMO_CLOCK_SHIFT (a Go duration, read once) to the wall clock,
# and prints the overlay's path. Without PMO_CLOCK_SHIFT the clock is the real one. It
# is how test-ahead.sh moves Go programs' clock: libfaketime cannot, since Go reads the
# clock through the vDSO, not libc. The monotonic clock is left alone, so durations and
# timers are unaffected.
clock_overlay() {
	local dir=$1 src
	src=$(go env GOROOT)/src/time
	mkdir -p "$dir"
	sed 's/^\tsec, nsec, mono := runtimeNow()$/&\n\tsec += clockShift()/' "$src/time.go" >"$dir/time.go"
	[ "$(grep -c 'clockShift()' "$dir/time.go")" = 1 ] ||
		die "could not patch time.Now in $src/time.go: Go's source changed; update clock_overlay in scripts/lib.sh"
	cat >"$dir/zz_clockshift.go" <<'GO'
package time

import (
	"sync"
	"syscall"
)

var (
	clockShiftOnce sync.Once
	clockShiftSec  int64
)

// clockShift is PMO_CLOCK_SHIFT in seconds, added to every reading of the wall clock.
func clockShift() int64 {
	clockShiftOnce.Do(func() {
		if v, ok := syscall.Getenv("PMO_CLOCK_SHIFT"); ok {
			if d, err := ParseDuration(v); err == nil {
				clockShiftSec = int64(d / Second)
			}
		}
	})
	return clockShiftSec
}
GO
	printf '{"Replace":{"%s/time.go":"%s/time.go","%s/zz_clockshift.go":"%s/zz_clockshift.go"}}\n' \
		"$src" "$(cd "$dir" && pwd)" "$src" "$(cd "$dir" && pwd)" >"$dir/overlay.json"
	echo "$(cd "$dir" && pwd)/overlay.json"
}

# temporal_cli_ahead builds the pinned Temporal CLI with the clock overlay <overlay>
# into .bin/temporal-ahead, once, and prints its path: a dev server whose clock
# PMO_CLOCK_SHIFT moves, for test-ahead.sh.
temporal_cli_ahead() {
	local overlay=$1 dir=$PWD/.bin/ahead
	local want="$TEMPORAL_CLI_VERSION $(go env GOVERSION)"
	if [ ! -x "$dir/temporal" ] || [ "$(cat "$dir/temporal.version" 2>/dev/null)" != "$want" ]; then
		log "building the Temporal CLI $TEMPORAL_CLI_VERSION with a movable clock (a few minutes, once)"
		GOFLAGS=-overlay=$overlay GOBIN=$dir go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION" ||
			die "could not build the Temporal CLI with the clock overlay"
		echo "$want" >"$dir/temporal.version"
	fi
	echo "$dir/temporal"
}

# libfaketime_lib prints libfaketime's library, which moves the clock of C programs
# such as PostgreSQL: LIBFAKETIME, or Debian's, which it installs from Debian's packages
# when it is missing and it can (as root, with apt-get).
libfaketime_lib() {
	if [ -n "${LIBFAKETIME:-}" ]; then
		echo "$LIBFAKETIME"
		return
	fi
	local f
	for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 /usr/local/lib/faketime/libfaketime.so.1; do
		[ -e "$f" ] && { echo "$f"; return; }
	done
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing libfaketime from Debian's packages for the tests with the clock ahead (once)"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfaketime; } >&2 ||
			die "could not install libfaketime; install it yourself or set LIBFAKETIME"
		for f in /usr/lib/*/faketime/libfaketime.so.1; do
			[ -e "$f" ] && { echo "$f"; return; }
		done
	fi
	die "the tests with the clock ahead need libfaketime: apt-get install libfaketime, or set LIBFAKETIME"
}
