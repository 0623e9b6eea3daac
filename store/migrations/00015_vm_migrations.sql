-- +goose Up
-- The migration that last claimed each VM. A VM is migrated by one migration at a time:
-- the web server claims the VM before it starts a migration, and another migration may
-- take the claim only once the holder's workflow has ended (or never started).
CREATE TABLE vm_migrations (
    vm_id        text PRIMARY KEY,
    migration_id text NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE vm_migrations;
