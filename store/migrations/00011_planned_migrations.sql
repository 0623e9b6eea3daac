-- +goose Up
-- Known work: migrations planned through POST /forecast (plan=true) that have not
-- arrived yet. They lived in the fleet workflow's state, which carried them in every
-- tick's activity inputs and across continue-as-new; a pool of thousands of planned
-- migrations outgrew Temporal's payload limits, so the fleet keeps them here and names
-- only the IDs that arrived. A row stays after it arrives (arrived_at), so that the
-- migration's history row can tell planned work from ad-hoc arrivals.
CREATE TABLE planned_migrations (
    id              text PRIMARY KEY,
    pool            text NOT NULL,
    vm_id           text NOT NULL DEFAULT '',
    site_id         text NOT NULL REFERENCES sites (id),
    bytes           bigint NOT NULL CHECK (bytes > 0),
    sla_tier        text NOT NULL DEFAULT '',
    earliest_start  timestamptz NOT NULL,
    deadline        timestamptz NOT NULL,
    planned_at      timestamptz NOT NULL,
    arrived_at      timestamptz,
    CHECK (deadline > earliest_start)
);
CREATE INDEX planned_migrations_pool_idx ON planned_migrations (pool, deadline) WHERE arrived_at IS NULL;

-- +goose Down
DROP TABLE planned_migrations;
