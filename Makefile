# PMO's two commands are `make run` and `make test`; the rest are conveniences.
.PHONY: run test test-ahead test-cluster build tools lint bench bench-forecast bench-scaling bench-pools bench-wave fuzz load clean

# Build and bring up the whole system in the foreground (see scripts/run.sh).
run:
	@bash scripts/run.sh

# Start what the tests need, then vet and run every test (see scripts/test.sh).
test:
	@bash scripts/test.sh

# The date-sensitive packages' tests (scripts/ahead-packages) with every clock a year
# ahead (see scripts/test-ahead.sh); make test runs it too.
test-ahead:
	@bash scripts/test-ahead.sh

# PMO on Temporal's production server (built from the Go module proxy) with PostgreSQL
# persistence and visibility, two workers, one killed mid-wave (see scripts/cluster.sh);
# make test runs it too.
test-cluster:
	@bash scripts/cluster.sh

# Build the four binaries into bin/.
build:
	go build -o bin/ ./worker ./web ./starter ./connector

# Build the pinned Temporal CLI, the Temporal server and SQL tool for cluster mode, the
# CLI with a movable clock for test-ahead, and SeaweedFS's weed (the S3 object store),
# into .bin/.
tools:
	@bash -c '. scripts/lib.sh && temporal_cli && temporal_server && temporal_cli_ahead "$$(clock_overlay .bin/ahead/overlay)" && weed_bin'

STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

# gofmt, go vet and staticcheck.
lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	go vet ./...
	go run $(STATICCHECK) ./...

# Benchmarks with their figures.
bench:
	go test -run '^$$' -bench . -benchmem ./...

# The forecasting engine on the M4 hourly set: accuracy table, one-core time, per-model benchmarks.
bench-forecast:
	@bash scripts/bench-forecast.sh

# Every Go fuzz target in turn, FUZZTIME each (see scripts/fuzz.sh and docs/reliability.md).
FUZZTIME ?= 3m
fuzz:
	@FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

# The load test: a fresh private system, 200 concurrent migrations submitted at 20
# requests/s, the figures printed, everything stopped (docs/load.md). ARGS go to the
# load test, e.g. make load ARGS="-n 50 -rate 10".
load:
	@bash scripts/load.sh $(ARGS)

# Migrations per second against 1, 2 and 4 workers on the Temporal server with
# PostgreSQL, and the memory of a worker and a connector (docs/scaling.md). ARGS go to
# the load test, e.g. make bench-scaling ARGS="-n 100 -rate 20".
bench-scaling:
	@bash scripts/bench-scaling.sh $(ARGS)

# PMO sharded into 20 pools (2,000 external connectors, 20,000 planned migrations) on
# the Temporal server with PostgreSQL; judges every fleet's history and tick time
# (docs/scaling.md). ARGS go to `loadtest pools`, e.g. ARGS="-pools 5 -duration 1m".
bench-pools:
	@bash scripts/bench-pools.sh $(ARGS)

# One planned wave of 10,000 demo VMs across three sites, submitted with one call, on
# the Temporal server with PostgreSQL: the time to the last child started, the largest
# histories, the tick and the workers' memory (docs/scaling.md). ARGS go to `loadtest
# wave`, e.g. ARGS="-max-running 500"; PMO_WAVE_VMS sets the wave's size.
bench-wave:
	@bash scripts/bench-wave.sh $(ARGS)

# Remove built files. The data in .data is kept; remove it yourself to start afresh.
clean:
	rm -rf bin .bin
