#!/usr/bin/env bash
# bench-forecast.sh is `make bench-forecast`: the forecasting engine's accuracy and
# speed on the M4 hourly set (414 series, horizon 48), as README.md and
# docs/forecasting.md quote them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

m4=${M4_DIR:-../shared/data/m4-hourly}
[ -f "$m4/Hourly-train.csv" ] || die "no M4 hourly data in $m4; set M4_DIR"
out=.data/bench
mkdir -p "$out"
go build -o "$out/starter" ./starter

log "every model on the M4 hourly test set (2 workers)"
"$out/starter" backtest -in "$m4/Hourly-train.csv" -test "$m4/Hourly-test.csv" -horizon 48 -period 24 |
	tee "$out/backtest.md"

log "the default model on one core: all 414 series fitted and forecast (GOMAXPROCS=1)"
time GOMAXPROCS=1 "$out/starter" forecast -in "$m4/Hourly-train.csv" \
	-horizon 48 -period 24 -workers 1 -quantiles 0.05,0.95 -out "$out/forecast.csv"
if command -v python3 >/dev/null && [ -f ../shared/tools/m4score.py ]; then
	log "the same forecasts scored by ../shared/tools/m4score.py"
	python3 ../shared/tools/m4score.py "$m4/Hourly-train.csv" "$m4/Hourly-test.csv" "$out/forecast.csv"
fi

log "per-model fit and forecast of one hourly series"
go test -run '^$' -bench . -benchmem ./forecast
