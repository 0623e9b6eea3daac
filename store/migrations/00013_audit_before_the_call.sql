-- +goose Up
-- An audit row is written before the call runs, so that a call that cannot be audited
-- is refused rather than served; its status is filled in once the call has answered.
-- NULL: the call's answer was not recorded (the server stopped, or PostgreSQL went away,
-- while it ran).
ALTER TABLE api_audit ALTER COLUMN status DROP NOT NULL;

-- +goose Down
UPDATE api_audit SET status = 0 WHERE status IS NULL;
ALTER TABLE api_audit ALTER COLUMN status SET NOT NULL;
