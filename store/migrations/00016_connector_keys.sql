-- +goose Up
-- A connector key belongs to one external connector (an appliance at a customer's
-- site) and may only post that connector's metrics.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('viewer', 'operator', 'admin', 'connector'));
ALTER TABLE api_keys ADD COLUMN connector_id text;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_connector_check CHECK ((role = 'connector') = (connector_id IS NOT NULL));

-- +goose Down
DELETE FROM api_audit WHERE key_id IN (SELECT id FROM api_keys WHERE role = 'connector');
DELETE FROM api_keys WHERE role = 'connector';
ALTER TABLE api_keys DROP CONSTRAINT api_keys_connector_check;
ALTER TABLE api_keys DROP COLUMN connector_id;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('viewer', 'operator', 'admin'));
