#!/usr/bin/env bash
# cluster.sh is `make test-cluster`, which `make test` also runs: PMO on Temporal's
# production server (built from the Go module proxy) with PostgreSQL persistence and
# visibility, schema set up by temporal-sql-tool, as the compose stack runs it minus
# Docker; then the cluster test (e2e/cluster_test.go): two workers, the web server and
# their connectors run a wave while one worker is killed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

data=${PMO_CLUSTER_DATA_DIR:-.data/cluster}
mkdir -p "$data"
pgdir=""
TEMPORAL_SERVER_PID=""
cleanup() {
	set +e
	cluster_stop
	pg_stop_started
}
trap cleanup EXIT

test_postgres "$data" "${PMO_CLUSTER_PG_PORT:-55434}" pmo_cluster
port=${PMO_CLUSTER_PORT:-17433}
cluster_start "$data" "$port" cluster
export PMO_CLUSTER_ADDRESS=127.0.0.1:$port
TEMPORAL_CLI=${TEMPORAL_CLI:-$(temporal_cli)}
export TEMPORAL_CLI
export CI=${CI:-1}

log "cluster test (PMO_CLUSTER_ADDRESS=$PMO_CLUSTER_ADDRESS); the server logs to $data/temporal.log"
out=$data/test.out
status=0
go test -count=1 -timeout 10m -run '^TestCluster' -v ./e2e >"$out" 2>&1 || status=$?
grep -E '^(=== RUN|--- (PASS|FAIL|SKIP)|PASS|FAIL|ok)' "$out" || true
if [ "$status" != 0 ]; then
	tail -80 "$out"
	die "the cluster test failed"
fi
grep -q -- '--- PASS: TestCluster' "$out" || die "the cluster test did not run"
