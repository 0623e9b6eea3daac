-- +goose Up
-- Each site belongs to one connector pool, whose fleet workflow plans for it and
-- gives its migrations connectors. Sites imported before pools existed are in the
-- default pool, the one PMO_POOL names unless it is set otherwise.
ALTER TABLE sites ADD COLUMN pool text NOT NULL DEFAULT 'default';
CREATE INDEX sites_pool_idx ON sites (pool);

-- +goose Down
ALTER TABLE sites DROP COLUMN pool;
