#!/usr/bin/env bash
# fuzz.sh is `make fuzz`: it runs each Go fuzz target in turn for FUZZTIME (default 3m),
# or only the targets whose names are given as arguments. A finding stops the run; the
# fuzzer has written the failing input under the package's testdata/fuzz/<target>/,
# where plain `go test` replays it from then on. docs/reliability.md lists the targets.
# The web target keeps API keys in PostgreSQL: set DATABASE_URL as for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-3m}
targets=(
	"./web FuzzJSONBodies"
	"./web FuzzCodecDecode"
	"./imports FuzzRead"
	"./imports FuzzReadAlertmanager"
	"./imports FuzzReadCalendar"
	"./widecsv FuzzRead"
	"./trace FuzzRead"
	"./trace FuzzReadSeries"
	"./forecast FuzzForecastInput"
)
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
		continue
	fi
	echo "== $pkg $name for $fuzztime"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
done
