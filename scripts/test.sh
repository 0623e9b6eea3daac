#!/usr/bin/env bash
# test.sh is `make test`: it starts the PostgreSQL cluster, Temporal dev server and S3
# object store that the tests need (unless DATABASE_URL, TEMPORAL_ADDRESS and
# PMO_TEST_S3_ENDPOINT are given), runs go vet and
# every test, then cluster mode (cluster.sh) and the date-sensitive tests with the clock
# a year ahead (test-ahead.sh), and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

data=${PMO_TEST_DATA_DIR:-.data/test}
mkdir -p "$data"
pgdir=""
TEMPORAL_PID=""
trap test_stop EXIT

test_postgres "$data" "${PMO_TEST_PG_PORT:-55433}" pmo_test
# The cluster pg_start made asks for its password: a login without it is refused.
if [ -n "$pgdir" ] && [ -f "$pgdir.password" ]; then
	psql_bin=$(pg_bin)/psql
	[ -x "$psql_bin" ] || psql_bin=psql
	if env -u PGPASSWORD PGPASSFILE=/dev/null "$psql_bin" -w -h 127.0.0.1 -p "${PMO_TEST_PG_PORT:-55433}" -U pmo -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
		die "PostgreSQL let pmo in without a password"
	fi
	log "PostgreSQL refuses a login without the password"
fi
if [ -z "${TEMPORAL_ADDRESS:-}" ]; then
	port=${PMO_TEST_TEMPORAL_PORT:-17233}
	# In memory: every test run starts from an empty Temporal.
	temporal_start "$port" "$data/temporal.log" --headless
	export TEMPORAL_ADDRESS=127.0.0.1:$port
fi
if [ -z "${PMO_TEST_S3_ENDPOINT:-}" ]; then
	# Afresh each run, like Temporal: the tests make buckets of their own.
	rm -rf "$data/s3"
	S3_ACCESS_KEY=pmo-test-admin S3_SECRET_KEY=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	weed_start "$data/s3" "${PMO_TEST_S3_PORT:-18400}"
	export PMO_TEST_S3_ENDPOINT=http://127.0.0.1:${PMO_TEST_S3_PORT:-18400} PMO_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY PMO_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
fi
# The fault tests start (and kill) a dev server of their own.
TEMPORAL_CLI=${TEMPORAL_CLI:-$(temporal_cli)}
export TEMPORAL_CLI
CHROMIUM=$(chromium_bin)
export CHROMIUM
export CI=${CI:-1} # tests that need a service fail instead of skipping

log "go vet"
go vet ./...
log "go test (DATABASE_URL=$(sed 's#//\([^:/@]*\):[^@]*@#//\1:***@#' <<<"$DATABASE_URL") TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS)"
go test -count=1 -timeout 12m ./...
# Cluster mode on the same PostgreSQL: Temporal's production server, two workers.
bash scripts/cluster.sh
# The date-sensitive tests again, with every clock a year ahead.
bash scripts/test-ahead.sh
