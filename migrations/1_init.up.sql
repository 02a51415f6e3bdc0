-- Money is BIGINT minor units everywhere; times are TIMESTAMPTZ (UTC in and out).

CREATE TABLE bills (
    bill_id              TEXT PRIMARY KEY CHECK (bill_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    status               TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    policy               TEXT NOT NULL,
    currency             CHAR(3) CHECK (currency ~ '^[A-Z]{3}$'),
    customer_email       TEXT,
    description          TEXT,
    billing_period_start TIMESTAMPTZ NOT NULL,
    billing_period_end   TIMESTAMPTZ NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    closed_at            TIMESTAMPTZ,
    -- Last position handed to a line item of this bill (see line_items.position).
    line_item_seq        BIGINT NOT NULL DEFAULT 0,
    -- Hash of the request that created the bill: a retry of the same request is not a conflict.
    request_fingerprint  TEXT NOT NULL,
    CHECK (billing_period_end > billing_period_start),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX bills_created_idx ON bills (created_at DESC, bill_id DESC);
CREATE INDEX bills_status_created_idx ON bills (status, created_at DESC, bill_id DESC);

CREATE TABLE line_items (
    -- Derived from (bill, idempotency key): a retried insert hits the same row.
    line_item_id UUID PRIMARY KEY,
    bill_id      TEXT NOT NULL REFERENCES bills (bill_id),
    -- Order within the bill, handed out under the bill's row lock by the trigger below, so
    -- positions commit in order and a reader paging an open bill never skips an item.
    position     BIGINT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    description  TEXT NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    metadata     JSONB CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    -- Which activity inserted the row (run id / activity id): lets a retried activity tell its
    -- own earlier insert from one made by another update, so totals count each row once.
    source_ref   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX line_items_bill_position_idx ON line_items (bill_id, position);

-- Final totals, written in the same transaction that closes the bill.
CREATE TABLE bill_totals (
    bill_id         TEXT NOT NULL REFERENCES bills (bill_id),
    currency        CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    line_item_count BIGINT NOT NULL CHECK (line_item_count >= 0),
    PRIMARY KEY (bill_id, currency)
);

-- Line items of a closed bill are immutable, whatever path the write takes. An insert also takes
-- the next position of its bill.
CREATE FUNCTION line_items_guard() RETURNS trigger AS $$
DECLARE
    bill_status TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE bills SET line_item_seq = line_item_seq + 1 WHERE bill_id = NEW.bill_id
            RETURNING status, line_item_seq INTO bill_status, NEW.position;
        IF bill_status = 'closed' THEN
            RAISE EXCEPTION 'bill is closed: line items cannot be changed' USING ERRCODE = 'FE001';
        END IF;
        RETURN NEW;
    END IF;
    FOR bill_status IN
        SELECT status FROM bills
        WHERE bill_id IN (OLD.bill_id, CASE WHEN TG_OP = 'UPDATE' THEN NEW.bill_id ELSE OLD.bill_id END)
        FOR SHARE
    LOOP
        IF bill_status = 'closed' THEN
            RAISE EXCEPTION 'bill is closed: line items cannot be changed' USING ERRCODE = 'FE001';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER line_items_guard
    BEFORE INSERT OR UPDATE OR DELETE ON line_items
    FOR EACH ROW EXECUTE FUNCTION line_items_guard();

-- A closed bill never reopens.
CREATE FUNCTION bills_refuse_reopen() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'bill % is closed and cannot be reopened', OLD.bill_id USING ERRCODE = 'FE002';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER bills_no_reopen
    BEFORE UPDATE ON bills
    FOR EACH ROW WHEN (OLD.status = 'closed' AND NEW.status <> 'closed')
    EXECUTE FUNCTION bills_refuse_reopen();

CREATE TABLE idempotency_keys (
    key           TEXT PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
    -- The request currently holding the key; only it may complete or release the key.
    owner         UUID NOT NULL,
    response_status INT,
    -- JSON, not JSONB: a replay returns the body byte for byte, keys in their original order.
    response_body JSON,
    -- A request that crashed mid-flight leaves its key locked only until then.
    locked_until  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- Written by ClosedBillPostProcessWorkflow; the invoice issue extends it.
CREATE TABLE bill_postprocess (
    bill_id     TEXT PRIMARY KEY REFERENCES bills (bill_id),
    workflow_id TEXT NOT NULL,
    ran_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
