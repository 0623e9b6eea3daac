-- +goose Up
-- Who wrote a history row: 'pmo', a migration PMO ran (RecordOutcome), or 'import', a
-- row of an imported history file. An import never overwrites PMO's outcome, and PMO's
-- outcome replaces an imported row of the same ID. Rows from before this column
-- are of unknown origin and are kept as PMO's, so that no import can overwrite them.
ALTER TABLE migrations ADD COLUMN recorded_by text NOT NULL DEFAULT 'pmo' CHECK (recorded_by IN ('pmo', 'import'));
ALTER TABLE migrations ALTER COLUMN recorded_by SET DEFAULT 'import';

-- +goose Down
ALTER TABLE migrations DROP COLUMN recorded_by;
