-- +goose Up
-- Downsampled connector metrics: a row that stands for several raw samples says how
-- many (samples) and over how wide a bucket (bucket_seconds; NULL on a raw sample), and
-- keeps the peaks beside the means (NULL on a raw sample, whose peak is its value).
ALTER TABLE connector_metrics
    ADD COLUMN samples        integer NOT NULL DEFAULT 1 CHECK (samples >= 1),
    ADD COLUMN bucket_seconds integer CHECK (bucket_seconds > 0),
    ADD COLUMN cpu_percent_max double precision CHECK (cpu_percent_max >= 0),
    ADD COLUMN ram_bytes_max   bigint CHECK (ram_bytes_max >= 0),
    ADD COLUMN bandwidth_used_max_bytes_per_sec double precision CHECK (bandwidth_used_max_bytes_per_sec >= 0);

-- Reads by time across connectors (the resource model, the target's free space) and
-- retention's deletes; the raw samples that are still to be downsampled.
CREATE INDEX connector_metrics_at_idx ON connector_metrics (at);
CREATE INDEX connector_metrics_raw_at_idx ON connector_metrics (at) WHERE bucket_seconds IS NULL;

-- History reads by start time across sites (site profiles, outcomes, the rate model),
-- and the rate model's count of migrations that overlapped on the same connector,
-- bounded by the window because every overlap ended after the window began.
CREATE INDEX migrations_started_idx ON migrations (started_at);
CREATE INDEX migrations_connector_ended_idx ON migrations (connector_id, ended_at, started_at);

-- Events still running or ahead (the plan's reads) and those that ended long ago
-- (retention).
CREATE INDEX system_events_ends_idx ON system_events (ends_at);

-- Forecasts by the hour they forecast (accuracy, retention); plans and the changes
-- events made to them by age (retention).
CREATE INDEX forecasts_target_idx ON forecasts (target_hour);
CREATE INDEX plans_generated_idx ON plans (generated_at);
CREATE INDEX event_plan_changes_at_idx ON event_plan_changes (at);

-- +goose Down
DROP INDEX event_plan_changes_at_idx;
DROP INDEX plans_generated_idx;
DROP INDEX forecasts_target_idx;
DROP INDEX system_events_ends_idx;
DROP INDEX migrations_connector_ended_idx;
DROP INDEX migrations_started_idx;
DROP INDEX connector_metrics_raw_at_idx;
DROP INDEX connector_metrics_at_idx;
ALTER TABLE connector_metrics
    DROP COLUMN samples, DROP COLUMN bucket_seconds, DROP COLUMN cpu_percent_max,
    DROP COLUMN ram_bytes_max, DROP COLUMN bandwidth_used_max_bytes_per_sec;
