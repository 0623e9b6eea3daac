# One image holds PMO's four binaries; the worker starts connector processes from it.
# Temporal's server, admin tools and Web UI come from Temporal's own images
# (docker-compose.yml).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/ ./worker ./web ./starter ./connector

# SeaweedFS's weed, the stack's S3-compatible object store, built from the tools module
# that repeats the replace directive of SeaweedFS's own go.mod (scripts/seaweedfs), as
# make test builds it.
FROM golang:1.26.8-bookworm AS weed-build
WORKDIR /src
COPY scripts/seaweedfs/ ./
RUN CGO_ENABLED=0 go build -o /out/weed github.com/seaweedfs/seaweedfs/weed

FROM debian:12.12-slim AS weed
COPY --from=weed-build /out/weed /usr/local/bin/weed
RUN useradd -r -u 1000 weed && mkdir /data && chown weed /data
USER weed

FROM debian:12.12-slim AS pmo
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
RUN useradd -r -u 1000 pmo && mkdir /data && chown pmo /data
USER pmo
ENV PMO_DATA_DIR=/data PMO_CONNECTOR_BIN=/usr/local/bin/connector
