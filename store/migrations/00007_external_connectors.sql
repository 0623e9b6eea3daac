-- +goose Up
-- External connectors run at a customer site and were registered, not started, by
-- PMO: no process of PMO's runs them (so no pid), and their metrics come over the API.
-- They become unhealthy when those metrics stop.
ALTER TABLE connectors
    ADD COLUMN external boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT connectors_external_pid_check CHECK (NOT external OR pid IS NULL),
    DROP CONSTRAINT connectors_state_check,
    ADD CONSTRAINT connectors_state_check
        CHECK (state IN ('warming', 'warm', 'active', 'draining', 'stopped', 'failed', 'unhealthy'));

-- +goose Down
UPDATE connectors SET state = 'failed' WHERE state = 'unhealthy';
ALTER TABLE connectors
    DROP CONSTRAINT connectors_state_check,
    ADD CONSTRAINT connectors_state_check
        CHECK (state IN ('warming', 'warm', 'active', 'draining', 'stopped', 'failed')),
    DROP CONSTRAINT connectors_external_pid_check,
    DROP COLUMN external;
