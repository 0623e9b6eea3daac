-- +goose Up
-- Live system events. An anomaly may be open: it lasts until it is closed (ends_at
-- NULL). A maintenance window that is cancelled before it starts keeps its row for the
-- record, with cancelled_at set, and planning no longer sees it.
ALTER TABLE system_events ALTER COLUMN ends_at DROP NOT NULL;
ALTER TABLE system_events
    -- who said so: operator (POST /events), alertmanager, calendar, detector (the
    -- fleet's anomaly detector), breach (an SLA breach), seed
    ADD COLUMN source       text NOT NULL DEFAULT 'operator',
    ADD COLUMN recorded_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN cancelled_at timestamptz;
UPDATE system_events SET source = CASE
    WHEN source_key LIKE 'anomaly/%' THEN 'detector'
    WHEN source_key LIKE 'sla-breach/%' THEN 'breach'
    WHEN source_key LIKE 'demo-%' THEN 'seed'
    ELSE 'operator' END;
-- Open events are found by the start alone.
CREATE INDEX system_events_open_idx ON system_events (site_id, starts_at) WHERE ends_at IS NULL;

-- What each event did to a pool's plan: the fleet re-plans when it is told of events
-- and records, per event, the site's connector target before and after and what else
-- changed. One row per pool, event and re-plan.
CREATE TABLE event_plan_changes (
    pool        text NOT NULL,
    event_key   text NOT NULL,
    at          timestamptz NOT NULL,
    site_id     text NOT NULL,
    connectors_before integer NOT NULL,
    connectors_after  integer NOT NULL,
    detail      text NOT NULL DEFAULT '',
    PRIMARY KEY (pool, event_key, at)
);
CREATE INDEX event_plan_changes_event_idx ON event_plan_changes (event_key);

-- +goose Down
DROP TABLE event_plan_changes;
DROP INDEX system_events_open_idx;
DELETE FROM system_events WHERE ends_at IS NULL OR cancelled_at IS NOT NULL;
ALTER TABLE system_events DROP COLUMN source, DROP COLUMN recorded_at, DROP COLUMN cancelled_at;
ALTER TABLE system_events ALTER COLUMN ends_at SET NOT NULL;
