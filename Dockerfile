# One image holds PMO's four binaries; the worker starts connector processes from it.
# Temporal's server, admin tools and Web UI come from Temporal's own images
# (docker-compose.yml).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/ ./worker ./web ./starter ./connector

FROM debian:12.12-slim AS pmo
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
RUN useradd -r -u 1000 pmo && mkdir /data && chown pmo /data
USER pmo
ENV PMO_DATA_DIR=/data PMO_CONNECTOR_BIN=/usr/local/bin/connector
