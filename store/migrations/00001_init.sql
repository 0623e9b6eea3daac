-- +goose Up
-- Sites are where VMs run and where connectors are placed.
CREATE TABLE sites (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    region        text NOT NULL,
    uplink_bytes_per_sec    double precision NOT NULL CHECK (uplink_bytes_per_sec > 0)
);

-- SLA tiers bound how long a transfer and a cutover may take.
CREATE TABLE sla_tiers (
    name                 text PRIMARY KEY,
    max_transfer_seconds integer NOT NULL CHECK (max_transfer_seconds > 0),
    max_downtime_seconds integer NOT NULL CHECK (max_downtime_seconds > 0),
    -- quantile of forecast demand that capacity is sized to for this tier
    plan_quantile        double precision NOT NULL DEFAULT 0.5 CHECK (plan_quantile > 0 AND plan_quantile < 1)
);

-- VM inventory. storage_bytes is the VM's real size; disk_uri/disk_bytes name the
-- disk image to move (in the demo a scaled-down file, see docs/demo.md).
CREATE TABLE vms (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    site_id               text NOT NULL REFERENCES sites (id),
    cpu_cores             integer NOT NULL CHECK (cpu_cores > 0),
    ram_bytes             bigint NOT NULL CHECK (ram_bytes > 0),
    storage_bytes         bigint NOT NULL CHECK (storage_bytes > 0),
    network_bytes_per_sec           double precision NOT NULL CHECK (network_bytes_per_sec >= 0),
    disk_change_bytes_per_sec  double precision NOT NULL CHECK (disk_change_bytes_per_sec >= 0),
    sla_tier              text NOT NULL REFERENCES sla_tiers (name),
    disk_uri              text NOT NULL,
    disk_bytes            bigint NOT NULL CHECK (disk_bytes > 0)
);
CREATE INDEX vms_site_idx ON vms (site_id);

-- Migration history: one row per migration, written when it ends.
CREATE TABLE migrations (
    id               text PRIMARY KEY,
    vm_id            text NOT NULL,
    site_id          text NOT NULL REFERENCES sites (id),
    connector_id     text NOT NULL,
    sla_tier         text NOT NULL REFERENCES sla_tiers (name),
    bytes            bigint NOT NULL CHECK (bytes >= 0),
    started_at       timestamptz NOT NULL,
    ended_at         timestamptz NOT NULL,
    avg_bytes_per_sec     double precision NOT NULL CHECK (avg_bytes_per_sec >= 0),
    outcome          text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'sla_breached', 'cancelled')),
    downtime_seconds double precision NOT NULL DEFAULT 0 CHECK (downtime_seconds >= 0),
    detail           text NOT NULL DEFAULT '',
    CHECK (ended_at >= started_at)
);
CREATE INDEX migrations_site_started_idx ON migrations (site_id, started_at);

-- System events: maintenance windows and anomalies at a site.
CREATE TABLE system_events (
    id          bigserial PRIMARY KEY,
    site_id     text NOT NULL REFERENCES sites (id),
    kind        text NOT NULL CHECK (kind IN ('maintenance', 'anomaly')),
    severity    text NOT NULL DEFAULT 'info' CHECK (severity IN ('info', 'warning', 'critical')),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    description text NOT NULL DEFAULT '',
    -- source_key makes inserts from retried activities idempotent
    source_key  text UNIQUE,
    CHECK (ends_at > starts_at)
);
CREATE INDEX system_events_site_time_idx ON system_events (site_id, starts_at, ends_at);

-- Connectors as the fleet provisioned them, and their sizes.
CREATE TABLE connectors (
    id             text PRIMARY KEY,
    pool           text NOT NULL,
    site_id        text NOT NULL REFERENCES sites (id),
    state          text NOT NULL CHECK (state IN ('warming', 'warm', 'active', 'draining', 'stopped', 'failed')),
    cpu_millis     integer NOT NULL CHECK (cpu_millis > 0),
    ram_bytes      bigint NOT NULL CHECK (ram_bytes > 0),
    bandwidth_bytes_per_sec double precision NOT NULL CHECK (bandwidth_bytes_per_sec > 0),
    storage_bytes  bigint NOT NULL CHECK (storage_bytes > 0),
    task_queue     text NOT NULL,
    pid            integer,
    created_at     timestamptz NOT NULL DEFAULT now(),
    ready_at       timestamptz,
    stopped_at     timestamptz
);
CREATE INDEX connectors_pool_idx ON connectors (pool, state);

-- Time-stamped metrics that each connector process writes about itself.
CREATE TABLE connector_metrics (
    connector_id       text NOT NULL REFERENCES connectors (id),
    at                 timestamptz NOT NULL,
    cpu_percent        double precision NOT NULL CHECK (cpu_percent >= 0),
    ram_bytes          bigint NOT NULL CHECK (ram_bytes >= 0),
    bandwidth_used_bytes_per_sec double precision NOT NULL CHECK (bandwidth_used_bytes_per_sec >= 0),
    active_tasks       integer NOT NULL CHECK (active_tasks >= 0),
    bytes_moved        bigint NOT NULL DEFAULT 0 CHECK (bytes_moved >= 0),
    PRIMARY KEY (connector_id, at)
);

-- Forecasts: per pool, site and future hour, one row per tick that produced it.
CREATE TABLE forecasts (
    pool          text NOT NULL,
    site_id       text NOT NULL REFERENCES sites (id),
    generated_at  timestamptz NOT NULL,
    target_hour   timestamptz NOT NULL,
    model         text NOT NULL,
    planned       double precision NOT NULL CHECK (planned >= 0),
    adhoc_mean    double precision NOT NULL CHECK (adhoc_mean >= 0),
    adhoc_lo      double precision NOT NULL CHECK (adhoc_lo >= 0),
    adhoc_hi      double precision NOT NULL CHECK (adhoc_hi >= 0),
    PRIMARY KEY (pool, site_id, generated_at, target_hour)
);

-- Plans: the fleet's decision on each tick, with its reasons.
CREATE TABLE plans (
    pool          text NOT NULL,
    generated_at  timestamptz NOT NULL,
    body          jsonb NOT NULL,
    PRIMARY KEY (pool, generated_at)
);

-- Operator overrides and their audit trail.
CREATE TABLE overrides (
    id            text PRIMARY KEY,
    pool          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('pin', 'pause', 'resume', 'drain')),
    site_id       text,
    connector_id  text,
    min_connectors integer,
    max_connectors integer,
    who           text NOT NULL,
    why           text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz
);

CREATE TABLE override_audit (
    id           bigserial PRIMARY KEY,
    override_id  text NOT NULL,
    pool         text NOT NULL,
    action       text NOT NULL CHECK (action IN ('applied', 'expired', 'rejected')),
    who          text NOT NULL,
    why          text NOT NULL,
    at           timestamptz NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (override_id, action)
);

-- +goose Down
DROP TABLE override_audit;
DROP TABLE overrides;
DROP TABLE plans;
DROP TABLE forecasts;
DROP TABLE connector_metrics;
DROP TABLE connectors;
DROP TABLE system_events;
DROP TABLE migrations;
DROP TABLE vms;
DROP TABLE sla_tiers;
DROP TABLE sites;
