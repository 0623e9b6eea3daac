-- +goose Up
-- When the connector's process was last started, so that the time it took to become
-- ready (ready_at - started_at) can be learned as the provisioning lead time.
ALTER TABLE connectors ADD COLUMN started_at timestamptz;

-- +goose Down
ALTER TABLE connectors DROP COLUMN started_at;
