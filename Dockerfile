# One image holds PMO's four binaries; the worker starts connector processes from it.
# A second target builds the pinned Temporal CLI for the dev server, as make run does.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/ ./worker ./web ./starter ./connector

FROM golang:1.26-bookworm AS temporal-build
RUN CGO_ENABLED=0 GOBIN=/out go install github.com/temporalio/cli/cmd/temporal@v1.5.1

FROM debian:bookworm-slim AS temporal
COPY --from=temporal-build /out/temporal /usr/local/bin/temporal
RUN useradd -r -u 1000 temporal && mkdir /data && chown temporal /data
USER temporal
EXPOSE 7233 8233
ENTRYPOINT ["temporal"]

FROM debian:bookworm-slim AS pmo
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
RUN useradd -r -u 1000 pmo && mkdir /data && chown pmo /data
USER pmo
ENV PMO_DATA_DIR=/data PMO_CONNECTOR_BIN=/usr/local/bin/connector
