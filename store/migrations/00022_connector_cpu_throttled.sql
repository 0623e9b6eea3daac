-- +goose Up
-- How long a connector's CPU limit held it back over a sample's interval, as a
-- percentage of the interval; NULL where it runs without a CPU limit. The planner
-- tells a CPU-bound connector from a bandwidth-bound one by it.
ALTER TABLE connector_metrics
    ADD COLUMN cpu_throttled_percent double precision CHECK (cpu_throttled_percent >= 0);

-- +goose Down
ALTER TABLE connector_metrics DROP COLUMN cpu_throttled_percent;
