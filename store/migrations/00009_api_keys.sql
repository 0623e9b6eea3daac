-- +goose Up
-- API keys for the HTTP API. Only the SHA-256 of a key is kept: the key itself is shown
-- once, when `starter apikey create` makes it. The id is part of the key's visible
-- prefix (pmo_<id>_...), so that a key seen in a config file can be found here.
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    hash         bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    -- When the web server last looked the key up: at most its key cache's age late.
    last_used_at timestamptz
);

-- Every mutating HTTP call (not GET), after it ran: who (key and role), what (method,
-- path and route) and how it ended (the HTTP status). Calls without a valid key are
-- logged, not audited, so that anyone cannot fill this table.
CREATE TABLE api_audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    key_id     text NOT NULL REFERENCES api_keys (id),
    role       text NOT NULL,
    method     text NOT NULL,
    path       text NOT NULL,
    route      text NOT NULL,
    status     integer NOT NULL,
    request_id text NOT NULL DEFAULT ''
);
CREATE INDEX api_audit_at_idx ON api_audit (at);
CREATE INDEX api_audit_key_idx ON api_audit (key_id, at);

-- +goose Down
DROP TABLE api_audit;
DROP TABLE api_keys;
