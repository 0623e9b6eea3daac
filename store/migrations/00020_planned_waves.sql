-- +goose Up
-- A planned migration belongs to the wave it was planned in: the POST /forecast
-- request's ID. WaveWorkflow reads its wave's migrations in pages by ID. Rows planned
-- before have none.
ALTER TABLE planned_migrations ADD COLUMN wave text NOT NULL DEFAULT '';
CREATE INDEX planned_migrations_wave_idx ON planned_migrations (wave, id) WHERE wave <> '';

-- +goose Down
DROP INDEX planned_migrations_wave_idx;
ALTER TABLE planned_migrations DROP COLUMN wave;
