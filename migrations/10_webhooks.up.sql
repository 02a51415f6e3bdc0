-- Webhooks: a transactional outbox of events, the endpoints that subscribe to them, and one
-- delivery per (endpoint, event). An event and its deliveries are written by webhook_emit() in
-- the transaction of the change it reports, so a rolled-back change emits nothing and a committed
-- one cannot lose its event. The relay (webhooks/relay.ts) starts a Temporal workflow per delivery.

ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['bills:read', 'bills:write', 'webhooks:manage', 'admin']);

CREATE TABLE webhook_endpoints (
    webhook_id          TEXT PRIMARY KEY,
    url                 TEXT NOT NULL CHECK (char_length(url) <= 2048),
    -- Event types, or '*' for all of them.
    events              TEXT[] NOT NULL CHECK (cardinality(events) > 0),
    description         TEXT CHECK (char_length(description) <= 500),
    enabled             BOOLEAN NOT NULL DEFAULT true,
    disabled_at         TIMESTAMPTZ,
    disabled_reason     TEXT,
    -- Signing secrets, AES-256-GCM under WEBHOOK_SECRETS_KEY: a dump of this table cannot sign.
    secret_ciphertext   TEXT NOT NULL,
    -- After a rotation the old secret signs alongside the new one until it expires.
    previous_secret_ciphertext TEXT,
    previous_secret_expires_at TIMESTAMPTZ,
    -- The first failed attempt since the last success (or since a pause in failures longer than
    -- any retry interval); an endpoint failing for long is disabled.
    failing_since       TIMESTAMPTZ,
    last_failure_at     TIMESTAMPTZ,
    -- What the creating request asked for: its retry with the same idempotency key is no conflict.
    request_fingerprint TEXT NOT NULL,
    -- Milliseconds, as the API writes times: a page cursor holds exactly this value.
    created_at          TIMESTAMPTZ NOT NULL DEFAULT date_trunc('milliseconds', now()),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (enabled = (disabled_at IS NULL)),
    CHECK ((previous_secret_ciphertext IS NULL) = (previous_secret_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_created_idx ON webhook_endpoints (created_at DESC, webhook_id DESC);

CREATE TABLE webhook_events (
    event_id   TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- The body as sent, { id, type, created_at, data }: JSON, not JSONB, so every attempt signs
    -- and sends the same bytes, keys in the order they were written.
    payload    JSON NOT NULL
);
CREATE INDEX webhook_events_created_idx ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    delivery_id        UUID PRIMARY KEY,
    webhook_id         TEXT NOT NULL REFERENCES webhook_endpoints (webhook_id) ON DELETE CASCADE,
    event_id           TEXT NOT NULL REFERENCES webhook_events (event_id) ON DELETE CASCADE,
    status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    -- Attempts claimed so far: one may have reached the receiver without its outcome being recorded.
    attempts           INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Attempts whose outcome is recorded; fewer than `attempts` while one is in flight (or was lost).
    settled_attempts   INT NOT NULL DEFAULT 0 CHECK (settled_attempts <= attempts),
    -- A manual retry starts the delivery again under a new workflow: one generation each.
    generation         INT NOT NULL DEFAULT 0,
    -- When the relay started this generation's workflow; NULL: still to start.
    dispatched_at      TIMESTAMPTZ,
    -- Retries stop this long after it (WEBHOOK_RETRY_FOR_MS): creation, or the manual retry.
    retrying_since     TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_attempt_at    TIMESTAMPTZ,
    last_attempt_at    TIMESTAMPTZ,
    last_status_code   INT,
    last_error         TEXT,
    -- Truncated (WEBHOOK_RESPONSE_BODY_LIMIT): a receiver decides how much it answers, not us.
    last_response_body TEXT,
    last_duration_ms   INT,
    delivered_at       TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT date_trunc('milliseconds', now()),
    UNIQUE (webhook_id, event_id),
    CHECK ((status = 'succeeded') = (delivered_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC, delivery_id DESC);
CREATE INDEX webhook_deliveries_undispatched_idx ON webhook_deliveries (created_at) WHERE status = 'pending' AND dispatched_at IS NULL;
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- Records an event and a delivery to every enabled endpoint subscribed to its type (or only to
-- `p_webhook_id`, for a test ping). Call it inside the transaction of the change. Returns the id.
CREATE FUNCTION webhook_emit(p_type TEXT, p_data JSON, p_webhook_id TEXT DEFAULT NULL) RETURNS TEXT AS $$
DECLARE
    v_id TEXT := 'evt_' || replace(gen_random_uuid()::text, '-', '');
    -- Milliseconds, as the API writes times: a page cursor holds exactly this value.
    v_at TIMESTAMPTZ := date_trunc('milliseconds', clock_timestamp());
BEGIN
    INSERT INTO webhook_events (event_id, type, created_at, payload)
    -- Written out rather than json_build_object, which puts spaces around every colon.
    VALUES (v_id, p_type, v_at, ('{"id":' || to_json(v_id) || ',"type":' || to_json(p_type)
        || ',"created_at":' || to_json(to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        || ',"data":' || p_data || '}')::json);
    -- FOR KEY SHARE: an endpoint being deleted meanwhile is waited for and then skipped, instead
    -- of failing this transaction (the change it reports with it) on the delivery's foreign key.
    INSERT INTO webhook_deliveries (delivery_id, webhook_id, event_id, created_at, retrying_since)
    SELECT gen_random_uuid(), webhook_id, v_id, v_at, v_at
      FROM (SELECT webhook_id FROM webhook_endpoints
             WHERE CASE WHEN p_webhook_id IS NULL THEN enabled AND (p_type = ANY (events) OR '*' = ANY (events))
                        ELSE webhook_id = p_webhook_id END
               FOR KEY SHARE) subscribed;
    RETURN v_id;
END;
$$ LANGUAGE plpgsql;

-- Wakes the relay when the inserting transaction commits (it also sweeps, so a lost
-- notification only delays a delivery).
CREATE FUNCTION webhook_deliveries_notify() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted) THEN
        PERFORM pg_notify('webhook_deliveries', '');
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION webhook_deliveries_notify();
