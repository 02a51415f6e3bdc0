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

-- No foreign keys, on purpose: their row-by-row checks were 7 of the 12 ms of Postgres time a
-- 1,000-event insert took (measured on this machine's Postgres 15). What they would hold is held
-- otherwise: the inserting statement reads each bill (locked FOR SHARE, so it cannot go meanwhile,
-- and nothing deletes bills), and meters are checked before and never deleted (their trigger).
CREATE TABLE usage_events (
    meter       TEXT NOT NULL,
    event_id    TEXT NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 128),
    bill_id     TEXT NOT NULL,
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

-- Each bill's aggregates per meter, kept by the statement that stores its events: one row per
-- (statement, bill, meter) with that statement's share, appended, never updated, so concurrent
-- ingestions never wait for each other's rows (an upserted total per bill serialized them: measured
-- 0.33 of pg_insert_batch with 32 callers over 100 bills). Reading a bill's usage
-- (GET /bills/:billId/usage) or rating it at the close sums one row per ingestion call however many
-- events each held. Every stored event lies in its bill's period (POST /events refuses the others),
-- so a bill's aggregate is its period's. Reconciliation recomputes them from the events themselves.
CREATE TABLE usage_aggregate_deltas (
    bill_id         TEXT NOT NULL,
    meter           TEXT NOT NULL,
    events          BIGINT NOT NULL,
    quantity_sum    NUMERIC NOT NULL,
    quantity_max    NUMERIC NOT NULL,
    -- The statement's latest event (by timestamp, then id) and its quantity.
    latest_ts       TIMESTAMPTZ NOT NULL,
    latest_event_id TEXT NOT NULL,
    latest_quantity NUMERIC NOT NULL,
    -- Values of a unique_count meter's field this statement saw first on the bill.
    distinct_values BIGINT NOT NULL
);
CREATE INDEX usage_aggregate_deltas_idx ON usage_aggregate_deltas (bill_id, meter);

-- The distinct values a unique_count meter has seen on a bill.
CREATE TABLE usage_distinct_values (
    bill_id TEXT NOT NULL,
    meter   TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (bill_id, meter, value)
);

-- Once per statement, over the rows it stored (ON CONFLICT DO NOTHING leaves duplicates out of
-- new_rows).
CREATE FUNCTION usage_events_aggregate() RETURNS trigger AS $$
BEGIN
    WITH added AS (
        INSERT INTO usage_distinct_values (bill_id, meter, value)
        SELECT DISTINCT n.bill_id, n.meter, n.properties ->> m.field
          FROM new_rows n JOIN meters m ON m.code = n.meter AND m.aggregation = 'unique_count'
         WHERE n.properties ->> m.field IS NOT NULL
         ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING
        RETURNING bill_id, meter),
    added_counts AS (SELECT bill_id, meter, count(*) AS n FROM added GROUP BY bill_id, meter)
    INSERT INTO usage_aggregate_deltas (bill_id, meter, events, quantity_sum, quantity_max, latest_ts, latest_event_id,
                                        latest_quantity, distinct_values)
    SELECT g.bill_id, g.meter, g.events, g.quantity_sum, g.quantity_max, g.latest_ts, g.latest_event_id, g.latest_quantity,
           COALESCE(a.n, 0)
      FROM (SELECT bill_id, meter, count(*) AS events, sum(quantity) AS quantity_sum, max(quantity) AS quantity_max,
                   (array_agg(ts ORDER BY ts DESC, event_id DESC))[1] AS latest_ts,
                   (array_agg(event_id ORDER BY ts DESC, event_id DESC))[1] AS latest_event_id,
                   (array_agg(quantity ORDER BY ts DESC, event_id DESC))[1] AS latest_quantity
              FROM new_rows GROUP BY bill_id, meter) g
      LEFT JOIN added_counts a USING (bill_id, meter);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER usage_events_aggregate AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_events_aggregate();
