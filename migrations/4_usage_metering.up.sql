-- Usage metering and pricing (docs/usage.md): meters, the prices a bill applies to them, and the
-- usage events themselves. Events are rated into line items in the transaction that closes their
-- bill (bills/activities.ts closeBill), under the bill's row lock, which an event's insert shares:
-- an event is either stored before the close and counted, or refused after it; never lost.

CREATE TABLE meters (
    code        TEXT PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    aggregation TEXT NOT NULL CHECK (aggregation IN ('count', 'sum', 'max', 'unique_count', 'latest')),
    -- The property whose distinct values unique_count counts.
    field       TEXT CHECK (field IS NULL OR char_length(field) BETWEEN 1 AND 100),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((aggregation = 'unique_count') = (field IS NOT NULL))
);
-- A meter never changes: events already aggregated one way must not be read another.
CREATE TRIGGER meters_immutable BEFORE UPDATE OR DELETE ON meters
    FOR EACH ROW EXECUTE FUNCTION records_immutable();

-- The prices a bill rates its usage with (usage/rating.ts), and the amounts of usage it alerts at
-- ([{currency, amount}]); a series passes both on.
ALTER TABLE bills ADD COLUMN prices JSONB CHECK (prices IS NULL OR jsonb_typeof(prices) = 'array');
ALTER TABLE bills ADD COLUMN usage_alerts JSONB CHECK (usage_alerts IS NULL OR jsonb_typeof(usage_alerts) = 'array');

-- Each threshold is reached once per bill (so once per period of a series): the row and its
-- usage.threshold_reached event are written by the transaction that stored the crossing events.
CREATE TABLE usage_alerts_reached (
    bill_id    TEXT NOT NULL REFERENCES bills (bill_id),
    currency   CHAR(3) NOT NULL,
    amount     BIGINT NOT NULL CHECK (amount > 0),
    estimated  BIGINT NOT NULL,
    reached_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (bill_id, currency, amount)
);

CREATE TABLE usage_events (
    meter       TEXT NOT NULL REFERENCES meters (code),
    event_id    TEXT NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 128),
    bill_id     TEXT NOT NULL REFERENCES bills (bill_id),
    ts          TIMESTAMPTZ NOT NULL,
    -- Exact: a decimal, never a float.
    quantity    NUMERIC NOT NULL CHECK (quantity >= 0),
    properties  JSONB CHECK (properties IS NULL OR jsonb_typeof(properties) = 'object'),
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- An event id is seen once per meter, for as long as the event is kept.
    PRIMARY KEY (meter, event_id)
);
CREATE INDEX usage_events_bill_idx ON usage_events (bill_id, meter, ts);
CREATE TRIGGER usage_events_immutable BEFORE UPDATE OR DELETE ON usage_events
    FOR EACH ROW EXECUTE FUNCTION records_immutable();
