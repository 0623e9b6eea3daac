-- +goose Up
-- A migration a wave started carries the wave's ID, so that the wave's retries find
-- its failed migrations and its report finds every attempt (a retry runs under a new
-- migration ID). The report is written once the wave ends and kept.
ALTER TABLE migrations ADD COLUMN wave text NOT NULL DEFAULT '';
CREATE INDEX migrations_wave_idx ON migrations (wave, vm_id) WHERE wave <> '';

CREATE TABLE wave_reports (
    wave       text PRIMARY KEY,
    pool       text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz NOT NULL,
    body       jsonb NOT NULL,
    CHECK (ended_at >= started_at)
);
CREATE INDEX wave_reports_ended_idx ON wave_reports (ended_at DESC);

-- +goose Down
DROP TABLE wave_reports;
DROP INDEX migrations_wave_idx;
ALTER TABLE migrations DROP COLUMN wave;
