#!/usr/bin/env bash
# test-ahead.sh is `make test-ahead`, which `make test` runs after the rest: the tests of
# the date-sensitive packages (scripts/ahead-packages) with every clock PMO_AHEAD_DAYS
# (365) days ahead, so that no date a test or an example holds can pass one day and
# break it. Go code reads a clock that PMO_CLOCK_SHIFT moves: the tests, the binaries
# the e2e tests build and the Temporal dev server started here are compiled with
# clock_overlay (lib.sh). PostgreSQL, which stamps rows with now(), runs under
# libfaketime. Both are started here, on ports of their own, whatever DATABASE_URL and
# TEMPORAL_ADDRESS say.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

began=$(date +%s)
days=${PMO_AHEAD_DAYS:-365}
data=${PMO_AHEAD_DATA_DIR:-.data/test-ahead}
pgdir=""
TEMPORAL_PID=""
trap test_stop EXIT

overlay=$(clock_overlay .bin/ahead/overlay)
TEMPORAL_CLI=$(temporal_cli_ahead "$overlay")
lib=$(libfaketime_lib)
export TEMPORAL_CLI PMO_CLOCK_SHIFT=$((days * 24))h GOFLAGS="-overlay=$overlay${GOFLAGS:+ $GOFLAGS}"

fresh_dir "$data"
# FAKETIME and LIBFAKETIME also move the clock of the shell that e2e/docs_test.go runs
# the examples in. The monotonic clock stays, as it does for Go: timeouts are not moved.
export FAKETIME=+${days}d LIBFAKETIME=$lib DONT_FAKE_MONOTONIC=1
# The URL holds the database password: only this user may read it.
install -m 600 /dev/null "$data/database_url"
LD_PRELOAD=$lib pg_start "$pgdir" "${PMO_AHEAD_PG_PORT:-55435}" pmo_ahead >"$data/database_url"
DATABASE_URL=$(cat "$data/database_url")
# Both clocks must have moved, or the tests would prove nothing.
moved() { [ "$2" -gt $((days * 86400 - 3600)) ] || die "$1's clock is $2 s ahead, not $days days"; }
psql=$(pg_bin)/psql
[ -x "$psql" ] || psql=psql
moved "PostgreSQL (under $lib)" $(($("$psql" "$DATABASE_URL" -tAc 'SELECT extract(epoch FROM now())::bigint') - $(date +%s)))
printf 'package main\n\nimport (\n\t"fmt"\n\t"time"\n)\n\nfunc main() { fmt.Println(time.Now().Unix()) }\n' >"$data/now.go"
moved "Go (with $overlay)" $(($(go run "$data/now.go") - $(date +%s)))
port=${PMO_AHEAD_TEMPORAL_PORT:-17633}
temporal_start "$port" "$data/temporal.log" --headless
export DATABASE_URL TEMPORAL_ADDRESS=127.0.0.1:$port
export CI=${CI:-1} # tests that need a service fail instead of skipping

pkgs=()
runs=()
while read -r pkg tests; do
	case $pkg in '' | '#'*) continue ;; esac
	if [ -n "$tests" ]; then
		read -ra names <<<"$tests"
		runs+=("$pkg" "^($(IFS='|' && echo "${names[*]}"))\$")
	else
		pkgs+=("$pkg")
	fi
done <scripts/ahead-packages

log "go test with the clock $days days ahead (PMO_CLOCK_SHIFT=$PMO_CLOCK_SHIFT): ${pkgs[*]}"
go test -count=1 -timeout 10m "${pkgs[@]}"
for ((i = 0; i < ${#runs[@]}; i += 2)); do
	log "go test -run '${runs[i + 1]}' ${runs[i]} with the clock $days days ahead"
	go test -count=1 -timeout 10m -run "${runs[i + 1]}" "${runs[i]}"
done
log "the date-sensitive tests pass with the clock $days days ahead ($(($(date +%s) - began)) s)"
