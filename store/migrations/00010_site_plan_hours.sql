-- +goose Up
-- The capacity plan hour by hour: for each site and hour, the connectors the newest
-- plan made for it wanted. An hour ahead holds the current plan's need; an hour gone
-- holds what the last plan made in it wanted, so that the dashboard can set planned
-- capacity against what ran. Each tick replaces the rows of the hours it planned.
CREATE TABLE site_plan_hours (
    pool        text NOT NULL,
    site_id     text NOT NULL REFERENCES sites (id),
    hour        timestamptz NOT NULL,
    connectors  integer NOT NULL CHECK (connectors >= 0),
    planned_at  timestamptz NOT NULL,
    PRIMARY KEY (pool, site_id, hour)
);
CREATE INDEX site_plan_hours_hour_idx ON site_plan_hours (hour);

-- A site's forecasts of one hour, newest first: the timeline's one probe per hour.
CREATE INDEX forecasts_site_target_idx ON forecasts (pool, site_id, target_hour, generated_at);

-- +goose Down
DROP INDEX forecasts_site_target_idx;
DROP TABLE site_plan_hours;
