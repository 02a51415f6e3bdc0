-- API keys: only a SHA-256 of the secret is stored; the key itself is shown once, at creation.
CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY CHECK (key_id ~ '^[a-z2-7]{16}$'),
    name          TEXT NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    secret_sha256 BYTEA NOT NULL CHECK (octet_length(secret_sha256) = 32),
    scopes        TEXT[] NOT NULL
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['bills:read', 'bills:write', 'admin']),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);
