-- +goose Up
-- When an external connector last posted metrics, as the database's clock saw it: the
-- web server records posts here, and the fleet reads it at each Collect, so that
-- thousands of appliances posting every few seconds leave the fleet's history alone.
ALTER TABLE connectors ADD COLUMN last_seen timestamptz;

-- +goose Down
ALTER TABLE connectors DROP COLUMN last_seen;
