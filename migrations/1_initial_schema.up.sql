-- The Fees API schema. Money is BIGINT minor units everywhere; times are TIMESTAMPTZ (UTC in and out).

-- ============================================================================================
-- Bills and line items
-- ============================================================================================

CREATE TABLE bills (
    bill_id              TEXT PRIMARY KEY CHECK (bill_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    -- A draft (see drafted_at) is still `open`: every write path checks that.
    status               TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    policy               TEXT NOT NULL,
    currency             CHAR(3) CHECK (currency ~ '^[A-Z]{3}$'),
    customer_email       TEXT,
    description          TEXT,
    billing_period_start TIMESTAMPTZ NOT NULL,
    billing_period_end   TIMESTAMPTZ NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    closed_at            TIMESTAMPTZ,
    -- Last position reserved for a line item of this bill (see line_items.position), bumped under
    -- the bill's row lock: it is also the bill's ledger version (see append_line_items).
    line_item_seq        BIGINT NOT NULL DEFAULT 0,
    -- Hash of the request that created the bill: a retry of the same request is not a conflict.
    request_fingerprint  TEXT NOT NULL,

    -- Recurring bills: one bill per period, linked into a series, until the series is cancelled.
    interval             TEXT,
    billing_anchor_day   SMALLINT CHECK (billing_anchor_day BETWEEN 1 AND 31),
    -- Charged at the start of every period (prorated when partial), in minor units.
    recurring_fee_amount      BIGINT CHECK (recurring_fee_amount > 0),
    recurring_fee_currency    CHAR(3) CHECK (recurring_fee_currency ~ '^[A-Z]{3}$'),
    recurring_fee_description TEXT CHECK (char_length(recurring_fee_description) BETWEEN 1 AND 500),
    -- The first bill's id, shared by every bill of the cycle.
    series_id            TEXT,
    previous_bill_id     TEXT REFERENCES bills (bill_id),
    -- Set on the bill that was open when its series was cancelled: it is the last one.
    cancelled_at         TIMESTAMPTZ,

    -- After its billing period a bill is a draft that still takes late usage until its grace period
    -- ends (docs/invoices.md); drafted_at is when it became one. payment_terms sets its invoice's due date.
    grace_period         TEXT NOT NULL DEFAULT 'PT0S',
    payment_terms        TEXT NOT NULL DEFAULT 'P30D',
    drafted_at           TIMESTAMPTZ,

    CHECK (billing_period_end > billing_period_start),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CONSTRAINT bills_policy_check CHECK (policy IN ('usage_based', 'recurring', 'monthly')),
    CONSTRAINT bills_recurring_check CHECK ((policy = 'usage_based') = (interval IS NULL) AND (interval IS NULL) = (series_id IS NULL)),
    CONSTRAINT bills_fee_check CHECK (
        (recurring_fee_amount IS NULL) = (recurring_fee_currency IS NULL)
        AND (recurring_fee_amount IS NULL) = (recurring_fee_description IS NULL)
        AND (recurring_fee_amount IS NULL OR interval IS NOT NULL)),
    CHECK (drafted_at IS NULL OR drafted_at >= billing_period_end)
);
CREATE INDEX bills_created_idx ON bills (created_at DESC, bill_id DESC);
CREATE INDEX bills_status_created_idx ON bills (status, created_at DESC, bill_id DESC);

-- A closed bill changes no more: not its status, nor any other column of its row. Only the records
-- that move on after the close (bill_postprocess, invoices) live in other tables. An update that
-- writes the same values (a retried cancel of a cancelled bill) changes nothing and passes.
CREATE FUNCTION bills_closed_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'bill % is closed and cannot change', OLD.bill_id USING ERRCODE = 'FE002';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER bills_closed_immutable
    BEFORE UPDATE ON bills
    FOR EACH ROW WHEN (OLD.status = 'closed' AND NEW IS DISTINCT FROM OLD)
    EXECUTE FUNCTION bills_closed_immutable();

CREATE TABLE line_items (
    -- Derived from (bill, idempotency key): a retried insert hits the same row.
    line_item_id UUID PRIMARY KEY,
    bill_id      TEXT NOT NULL REFERENCES bills (bill_id),
    -- Order within the bill. A write reserves its positions with one update of its bill (see
    -- append_line_items), which holds the bill's row lock until commit: positions increase in commit
    -- order, so a reader paging an open bill never skips an item. They are not contiguous (a row
    -- skipped by ON CONFLICT DO NOTHING leaves a gap); keyset paging only needs them increasing.
    -- One reservation per write rather than one bill update per row: measured on 1,000-row inserts
    -- into one bill, 95 ms with a per-row trigger (each row updates the bill row again, so the
    -- chain of row versions grows inside the transaction and the cost is quadratic: 5,000 rows
    -- took 1.3 s), 16 ms with a reserved range.
    position     BIGINT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    description  TEXT NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    metadata     JSONB CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    -- Which activity inserted the row (run id / activity id): an audit column; nothing decides by it.
    source_ref   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX line_items_bill_position_idx ON line_items (bill_id, position);

-- Totals per bill and currency: running while the bill is open, final once it is closed. Only the
-- insert trigger on line_items writes them.
CREATE TABLE bill_totals (
    bill_id         TEXT NOT NULL REFERENCES bills (bill_id),
    currency        CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    line_item_count BIGINT NOT NULL CHECK (line_item_count >= 0),
    PRIMARY KEY (bill_id, currency),
    -- Totals stay exact in a JSON number: past 2^53 - 1 the API could no longer say them exactly.
    CONSTRAINT bill_totals_exact_check CHECK (amount <= 9007199254740991)
);

-- Line items are append-only: the workflow's live totals and bill_totals only ever add, so a
-- changed or deleted row would make them disagree with the ledger. A correction is a new item.
-- Line items of a closed bill say so, whatever path the write takes.
CREATE FUNCTION line_items_guard() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM bills WHERE bill_id = OLD.bill_id AND status = 'closed') THEN
        RAISE EXCEPTION 'bill is closed: line items cannot be changed' USING ERRCODE = 'FE001';
    END IF;
    RAISE EXCEPTION 'line items are append-only' USING ERRCODE = 'FE006';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER line_items_guard BEFORE UPDATE OR DELETE ON line_items
    FOR EACH ROW EXECUTE FUNCTION line_items_guard();

-- A row inserted without a position takes the next one, and only from an open bill: updating the
-- counter of a closed bill would be refused by bills_closed_immutable (FE002) before this could
-- say FE001.
CREATE FUNCTION line_items_take_position() RETURNS trigger AS $$
BEGIN
    UPDATE bills SET line_item_seq = line_item_seq + 1 WHERE bill_id = NEW.bill_id AND status = 'open'
        RETURNING line_item_seq INTO NEW.position;
    IF NEW.position IS NULL THEN
        IF EXISTS (SELECT 1 FROM bills WHERE bill_id = NEW.bill_id) THEN
            RAISE EXCEPTION 'bill is closed: line items cannot be changed' USING ERRCODE = 'FE001';
        END IF;
        RAISE EXCEPTION 'bill % does not exist', NEW.bill_id USING ERRCODE = '23503';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER line_items_position BEFORE INSERT ON line_items
    FOR EACH ROW WHEN (NEW.position IS NULL) EXECUTE FUNCTION line_items_take_position();

-- Once per statement: every inserted row's bill is open, and its position was reserved by this
-- transaction (the bill row version is ours, so its lock is held until commit). Then the rows are
-- added to bill_totals, which holds running totals for open bills too (the close does not sum
-- them): a list page reads them in one indexed query however long a bill is.
CREATE FUNCTION line_items_after_insert() RETURNS trigger AS $$
DECLARE
    bad RECORD;
BEGIN
    SELECT i.bill_id, b.status INTO bad
      FROM inserted i LEFT JOIN bills b USING (bill_id)
     GROUP BY i.bill_id, b.status, b.xmin, b.line_item_seq
    HAVING b.status IS DISTINCT FROM 'open'
        OR b.xmin <> pg_current_xact_id()::xid
        OR max(i.position) > b.line_item_seq
     LIMIT 1;
    IF bad.status = 'closed' THEN
        RAISE EXCEPTION 'bill is closed: line items cannot be changed' USING ERRCODE = 'FE001';
    ELSIF bad.bill_id IS NOT NULL THEN
        RAISE EXCEPTION 'positions of bill % were not reserved in this transaction', bad.bill_id USING ERRCODE = 'FE005';
    END IF;
    INSERT INTO bill_totals AS t (bill_id, currency, amount, line_item_count)
    SELECT bill_id, currency, SUM(amount), COUNT(*) FROM inserted GROUP BY bill_id, currency
    ON CONFLICT (bill_id, currency) DO UPDATE
        SET amount = t.amount + EXCLUDED.amount, line_item_count = t.line_item_count + EXCLUDED.line_item_count;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER line_items_after_insert AFTER INSERT ON line_items
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION line_items_after_insert();

-- ============================================================================================
-- Idempotency
-- ============================================================================================

-- Idempotency keys belong to a caller and an operation, as Stripe scopes them per account: the same
-- key sent by two API keys, or to two endpoints, names two different requests. `scope` is the API
-- key's id ('anonymous' when authentication is off); `operation` is the method and route.
CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    operation     TEXT NOT NULL,
    key           TEXT NOT NULL,
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
    expires_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, operation, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- ============================================================================================
-- API keys
-- ============================================================================================

-- Only a SHA-256 of the secret is stored; the key itself is shown once, at creation.
CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY CHECK (key_id ~ '^[a-z2-7]{16}$'),
    name          TEXT NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    secret_sha256 BYTEA NOT NULL CHECK (octet_length(secret_sha256) = 32),
    scopes        TEXT[] NOT NULL
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['bills:read', 'bills:write', 'webhooks:manage', 'admin']),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);

-- ============================================================================================
-- Recurring bills (their columns are in bills, above)
-- ============================================================================================

-- One bill per period of a series, and one successor per bill.
CREATE UNIQUE INDEX bills_series_period_idx ON bills (series_id, billing_period_start) WHERE series_id IS NOT NULL;
CREATE UNIQUE INDEX bills_previous_idx ON bills (previous_bill_id) WHERE previous_bill_id IS NOT NULL;
CREATE INDEX bills_series_created_idx ON bills (series_id, created_at DESC, bill_id DESC) WHERE series_id IS NOT NULL;

-- ============================================================================================
-- Batches and the ledger
-- ============================================================================================

-- Claim check for batches: the API stores a batch here first and sends its bill's workflow only a
-- reference with per-currency sums; the workflow's activity moves the rows into line_items. Sent
-- as a payload, each 1,000-item batch would cross the Temporal server twice (the update, then the
-- activity input), and the server is the bound.
CREATE TABLE line_item_batches (
    -- The batch's update id and idempotency scope: derived from (bill, key) like line item ids.
    batch_id UUID PRIMARY KEY,
    bill_id TEXT NOT NULL REFERENCES bills (bill_id),
    -- What was sent, so a key reused for another batch is told apart from a retry.
    request_fingerprint TEXT NOT NULL,
    item_count INT NOT NULL CHECK (item_count BETWEEN 1 AND 1000),
    -- The items with their line_item_id, in order; NULL once applied.
    items JSONB,
    -- Which activity applied the batch and what it counted, so a retry of that activity answers
    -- the same and any other (a resent update in a later run) counts nothing.
    applied_by TEXT,
    applied_totals JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((items IS NULL) = (applied_by IS NOT NULL) AND (applied_by IS NULL) = (applied_totals IS NULL))
);

-- Closing a bill drops its batches: applied ones are in line_items, others can no longer apply.
CREATE INDEX line_item_batches_bill_idx ON line_item_batches (bill_id);

-- Postgres is the only counter: every write of line items returns, from its own transaction, the
-- bill's version (line_item_seq, bumped under the bill's row lock, so versions follow commit order)
-- and its running totals (bill_totals). A bill's workflow adopts the snapshot with the highest
-- version and never adds amounts itself, so retries, duplicates and late commits converge on the
-- ledger by construction.

-- One group of writes for one bill, in one round trip and one transaction: single line items
-- (`p_items`: [{line_item_id, amount, currency, description, metadata}]) and staged batches
-- (`p_batches`: [{batch_id, item_count, totals: {CUR: {amount, count}}}]). One position
-- reservation for the whole group. Returns the snapshot after the write and, in input order,
-- what became of each item ({line_item_id, created_at, same}: `same` is false when the id was
-- stored earlier with other content) and each batch ({batch_id, status}: applied, missing or
-- mismatch; a mismatched batch is rolled back alone).
CREATE FUNCTION append_line_items(p_bill_id TEXT, p_items JSONB, p_batches JSONB, p_source TEXT)
RETURNS TABLE (version BIGINT, totals JSONB, items JSONB, batches JSONB) AS $$
DECLARE
    reserve BIGINT;
    base BIGINT;
    next_position BIGINT;
    batch JSONB;
    staged RECORD;
    added JSONB;
    batch_results JSONB := '[]';
BEGIN
    reserve := jsonb_array_length(p_items)
        + COALESCE((SELECT sum((b ->> 'item_count')::bigint) FROM jsonb_array_elements(p_batches) b), 0);
    -- The bill's row lock, held to commit: versions and positions follow commit order.
    UPDATE bills SET line_item_seq = line_item_seq + reserve
     WHERE bill_id = p_bill_id AND status = 'open'
    RETURNING line_item_seq - reserve INTO base;
    IF base IS NULL THEN
        IF EXISTS (SELECT 1 FROM bills WHERE bill_id = p_bill_id) THEN
            RAISE EXCEPTION 'bill is closed: line items cannot be changed' USING ERRCODE = 'FE001';
        END IF;
        RAISE EXCEPTION 'bill % does not exist', p_bill_id USING ERRCODE = 'FE007';
    END IF;

    INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, metadata, source_ref)
    SELECT i.line_item_id, p_bill_id, base + i.ord, i.amount, i.currency, i.description, i.metadata, p_source
      FROM ROWS FROM (jsonb_to_recordset(p_items)
             AS (line_item_id UUID, amount BIGINT, currency TEXT, description TEXT, metadata JSONB))
             WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, ord)
    ON CONFLICT (line_item_id) DO NOTHING;
    next_position := base + jsonb_array_length(p_items);

    -- A new statement, so a new snapshot: rows a concurrent writer committed while this insert
    -- waited on them are seen here.
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
               'line_item_id', i.line_item_id,
               'created_at', li.created_at,
               'same', li.bill_id = p_bill_id AND li.amount = i.amount AND li.currency = i.currency
                   AND li.description = i.description AND li.metadata IS NOT DISTINCT FROM i.metadata)
             ORDER BY i.ord), '[]')
      INTO items
      FROM ROWS FROM (jsonb_to_recordset(p_items)
             AS (line_item_id UUID, amount BIGINT, currency TEXT, description TEXT, metadata JSONB))
             WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, ord)
      JOIN line_items li ON li.line_item_id = i.line_item_id;

    FOR batch IN SELECT * FROM jsonb_array_elements(p_batches) LOOP
        SELECT b.item_count, b.applied_by IS NOT NULL AS applied INTO staged
          FROM line_item_batches b
         WHERE b.batch_id = (batch ->> 'batch_id')::uuid AND b.bill_id = p_bill_id
           FOR UPDATE;
        IF NOT FOUND THEN
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'missing');
            CONTINUE;
        ELSIF staged.applied THEN
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'applied');
            CONTINUE;
        ELSIF staged.item_count <> (batch ->> 'item_count')::int THEN
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'mismatch');
            CONTINUE;
        END IF;
        BEGIN
            -- Sums as text: a BIGINT sum must not pass through a float.
            WITH ins AS (
                INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, metadata, source_ref)
                SELECT i.line_item_id, p_bill_id, next_position + i.ord, i.amount, i.currency, i.description, i.metadata, p_source
                  FROM line_item_batches b,
                       ROWS FROM (jsonb_to_recordset(b.items)
                         AS (line_item_id UUID, amount BIGINT, currency TEXT, description TEXT, metadata JSONB))
                         WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, ord)
                 WHERE b.batch_id = (batch ->> 'batch_id')::uuid
                ON CONFLICT (line_item_id) DO NOTHING
                RETURNING currency, amount)
            SELECT COALESCE(jsonb_object_agg(currency, jsonb_build_object('amount', amount, 'count', n)), '{}')
              INTO added
              FROM (SELECT currency, sum(amount)::text AS amount, count(*)::text AS n FROM ins GROUP BY currency) s;
            -- The workflow reserved the declared sums: rows that say otherwise (some stored by
            -- another path) are rolled back and the batch refused as a whole.
            IF added IS DISTINCT FROM (SELECT COALESCE(jsonb_object_agg(key, jsonb_build_object(
                     'amount', value ->> 'amount', 'count', value ->> 'count')), '{}')
                   FROM jsonb_each(batch -> 'totals')) THEN
                RAISE EXCEPTION 'batch sums differ' USING ERRCODE = 'FE008';
            END IF;
            UPDATE line_item_batches SET items = NULL, applied_by = p_source, applied_totals = batch -> 'totals'
             WHERE batch_id = (batch ->> 'batch_id')::uuid;
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'applied');
        EXCEPTION WHEN SQLSTATE 'FE008' THEN
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'mismatch');
        END;
        next_position := next_position + staged.item_count;
    END LOOP;

    RETURN QUERY
    SELECT b.line_item_seq,
           COALESCE((SELECT jsonb_object_agg(t.currency, jsonb_build_object('amount', t.amount::text, 'count', t.line_item_count::text))
                       FROM bill_totals t WHERE t.bill_id = p_bill_id), '{}'),
           items, batch_results
      FROM bills b WHERE b.bill_id = p_bill_id;
END;
$$ LANGUAGE plpgsql;

-- A bill's snapshot without writing: its version and running totals, read in one statement.
CREATE FUNCTION ledger_snapshot(p_bill_id TEXT)
RETURNS TABLE (version BIGINT, totals JSONB) AS $$
    SELECT b.line_item_seq,
           COALESCE((SELECT jsonb_object_agg(t.currency, jsonb_build_object('amount', t.amount::text, 'count', t.line_item_count::text))
                       FROM bill_totals t WHERE t.bill_id = p_bill_id), '{}')
      FROM bills b WHERE b.bill_id = p_bill_id;
$$ LANGUAGE sql STABLE;

-- ============================================================================================
-- Invoices and their lifecycle (docs/invoices.md)
-- ============================================================================================
-- The invoice is a document (numbered once, PDF written once); what moves after it is issued is
-- its delivery and its account: payments, credit notes, void, overdue.

-- One counter per sequence ("INV-2026", "CN-2026"). It is advanced in the transaction that stores
-- the document, so a rolled-back attempt gives its number back: numbers have no gaps.
CREATE TABLE invoice_sequences (
    sequence   TEXT PRIMARY KEY,
    last_value BIGINT NOT NULL CHECK (last_value > 0)
);

CREATE TABLE invoices (
    bill_id        TEXT PRIMARY KEY REFERENCES bills (bill_id),
    invoice_number TEXT NOT NULL UNIQUE,
    sequence       TEXT NOT NULL REFERENCES invoice_sequences (sequence),
    sequence_value BIGINT NOT NULL CHECK (sequence_value > 0),
    issued_at      TIMESTAMPTZ NOT NULL,
    -- Written once, right after the number is assigned; NULL only in between.
    pdf            BYTEA,
    pdf_sha256     TEXT,
    UNIQUE (sequence, sequence_value),
    CHECK ((pdf IS NULL) = (pdf_sha256 IS NULL))
);

-- An issued invoice is a legal document: never deleted, its number and PDF never changed.
CREATE FUNCTION invoices_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'invoice % cannot be deleted', OLD.invoice_number USING ERRCODE = 'FE003';
    END IF;
    IF OLD.pdf IS NOT NULL
       OR (NEW.bill_id, NEW.invoice_number, NEW.sequence, NEW.sequence_value, NEW.issued_at)
          IS DISTINCT FROM (OLD.bill_id, OLD.invoice_number, OLD.sequence, OLD.sequence_value, OLD.issued_at) THEN
        RAISE EXCEPTION 'invoice % is immutable', OLD.invoice_number USING ERRCODE = 'FE003';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoices_immutable
    BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_immutable();

-- The post-process state of a closed bill, written by closedBillPostProcessWorkflow: where its
-- invoice is, and the delivery record once it is sent.
CREATE TABLE bill_postprocess (
    bill_id           TEXT PRIMARY KEY REFERENCES bills (bill_id),
    workflow_id       TEXT NOT NULL,
    ran_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    status            TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'generated', 'sent', 'skipped', 'failed')),
    failed_step       TEXT CHECK (failed_step IN ('generate', 'deliver')),
    error             TEXT,
    recipient         TEXT,
    smtp_message_id   TEXT,
    smtp_response     TEXT,
    sent_at           TIMESTAMPTZ,
    delivery_attempts INT NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (status <> 'sent' OR (sent_at IS NOT NULL AND smtp_message_id IS NOT NULL AND recipient IS NOT NULL)),
    CHECK (status <> 'failed' OR error IS NOT NULL)
);

-- Operators look for failed invoices.
CREATE INDEX bill_postprocess_status_idx ON bill_postprocess (status) WHERE status <> 'sent';

-- A recorded delivery is final: nothing may send the invoice again by moving the status back.
CREATE FUNCTION bill_postprocess_final() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the invoice of bill % was already %', OLD.bill_id, OLD.status USING ERRCODE = 'FE004';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER bill_postprocess_final
    BEFORE UPDATE ON bill_postprocess
    FOR EACH ROW WHEN (OLD.status IN ('sent', 'skipped') AND NEW IS DISTINCT FROM OLD)
    EXECUTE FUNCTION bill_postprocess_final();

-- What is owed on an invoice, per currency. total is the invoice's (the bill's final totals);
-- credited and paid only grow, and never past it, so the amount due (total - credited - paid)
-- is never negative: overpaying or overcrediting fails here whatever path the write takes.
CREATE TABLE invoice_accounts (
    bill_id          TEXT PRIMARY KEY REFERENCES invoices (bill_id),
    status           TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'partially_paid', 'paid', 'overdue', 'uncollectible', 'void')),
    payment_terms    TEXT NOT NULL,
    finalized_at     TIMESTAMPTZ NOT NULL,
    due_at           TIMESTAMPTZ NOT NULL,
    paid_at          TIMESTAMPTZ,
    overdue_at       TIMESTAMPTZ,
    uncollectible_at TIMESTAMPTZ,
    voided_at        TIMESTAMPTZ,
    -- Grows with every change, so of two answers about one invoice the higher is the newer.
    version          BIGINT NOT NULL DEFAULT 1,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (due_at >= finalized_at),
    CHECK ((status = 'void') = (voided_at IS NOT NULL))
);
CREATE INDEX invoice_accounts_status_idx ON invoice_accounts (status);

CREATE TABLE invoice_balances (
    bill_id  TEXT NOT NULL REFERENCES invoice_accounts (bill_id),
    currency CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total    BIGINT NOT NULL CHECK (total >= 0),
    credited BIGINT NOT NULL DEFAULT 0 CHECK (credited >= 0),
    paid     BIGINT NOT NULL DEFAULT 0 CHECK (paid >= 0),
    PRIMARY KEY (bill_id, currency),
    CHECK (credited + paid <= total)
);

-- What an invoice billed never changes, and what was credited or paid only grows.
CREATE FUNCTION invoice_balances_grow() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.bill_id <> OLD.bill_id OR NEW.currency <> OLD.currency OR NEW.total <> OLD.total
       OR NEW.credited < OLD.credited OR NEW.paid < OLD.paid THEN
        RAISE EXCEPTION 'the balance of invoice % in % can only grow in credited and paid', OLD.bill_id, OLD.currency
            USING ERRCODE = 'FE003';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoice_balances_grow BEFORE UPDATE OR DELETE ON invoice_balances
    FOR EACH ROW EXECUTE FUNCTION invoice_balances_grow();

-- A payment as the client reported it; its id derives from the request's idempotency key.
CREATE TABLE invoice_payments (
    payment_id  UUID PRIMARY KEY,
    bill_id     TEXT NOT NULL REFERENCES invoice_accounts (bill_id),
    currency    CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount      BIGINT NOT NULL CHECK (amount > 0),
    paid_at     TIMESTAMPTZ NOT NULL,
    reference   TEXT,
    -- What identified the request (core/idempotency.ts): the same id sent with another body
    -- (a key reused after its idempotency record expired) is refused, not answered as this one.
    request_fingerprint TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX invoice_payments_bill_idx ON invoice_payments (bill_id, recorded_at);

-- A credit note is a document of its own: numbered from its own gap-free series (CN-<year>, a row
-- of invoice_sequences advanced in the transaction that issues it) and rendered in that
-- transaction, so it never exists without its PDF. Only its email delivery moves afterwards.
CREATE TABLE credit_notes (
    credit_note_id     UUID PRIMARY KEY,
    bill_id            TEXT NOT NULL REFERENCES invoice_accounts (bill_id),
    credit_note_number TEXT NOT NULL UNIQUE,
    sequence           TEXT NOT NULL REFERENCES invoice_sequences (sequence),
    sequence_value     BIGINT NOT NULL CHECK (sequence_value > 0),
    kind               TEXT NOT NULL CHECK (kind IN ('partial', 'full', 'void')),
    reason             TEXT,
    request_fingerprint TEXT NOT NULL,
    issued_at          TIMESTAMPTZ NOT NULL,
    pdf                BYTEA NOT NULL,
    pdf_sha256         TEXT NOT NULL,
    email_status       TEXT NOT NULL DEFAULT 'pending' CHECK (email_status IN ('pending', 'sent', 'skipped')),
    recipient          TEXT,
    smtp_message_id    TEXT,
    sent_at            TIMESTAMPTZ,
    UNIQUE (sequence, sequence_value)
);
CREATE INDEX credit_notes_bill_idx ON credit_notes (bill_id, issued_at);

-- A credit note keeps its number, content and PDF; its email may be recorded once.
CREATE FUNCTION credit_notes_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.email_status <> 'pending'
       OR (NEW.credit_note_id, NEW.bill_id, NEW.credit_note_number, NEW.sequence, NEW.sequence_value, NEW.kind,
           NEW.reason, NEW.request_fingerprint, NEW.issued_at, NEW.pdf, NEW.pdf_sha256)
          IS DISTINCT FROM (OLD.credit_note_id, OLD.bill_id, OLD.credit_note_number, OLD.sequence, OLD.sequence_value,
           OLD.kind, OLD.reason, OLD.request_fingerprint, OLD.issued_at, OLD.pdf, OLD.pdf_sha256) THEN
        RAISE EXCEPTION 'credit note % is immutable', OLD.credit_note_number USING ERRCODE = 'FE003';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER credit_notes_immutable BEFORE UPDATE OR DELETE ON credit_notes
    FOR EACH ROW EXECUTE FUNCTION credit_notes_immutable();

CREATE TABLE credit_note_lines (
    credit_note_id UUID NOT NULL REFERENCES credit_notes (credit_note_id),
    position       INT NOT NULL CHECK (position > 0),
    currency       CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount         BIGINT NOT NULL CHECK (amount > 0),
    reason         TEXT NOT NULL,
    PRIMARY KEY (credit_note_id, position)
);

-- Payments and credit-note lines are records: never changed, never deleted.
CREATE FUNCTION records_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = 'FE003';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoice_payments_immutable BEFORE UPDATE OR DELETE ON invoice_payments
    FOR EACH ROW EXECUTE FUNCTION records_immutable();
CREATE TRIGGER credit_note_lines_immutable BEFORE UPDATE OR DELETE ON credit_note_lines
    FOR EACH ROW EXECUTE FUNCTION records_immutable();

-- ============================================================================================
-- Webhooks
-- ============================================================================================
-- A transactional outbox of events, the endpoints that subscribe to them, and one delivery per
-- (endpoint, event). An event and its deliveries are written by webhook_emit() in the transaction
-- of the change it reports, so a rolled-back change emits nothing and a committed one cannot lose
-- its event. The relay (webhooks/relay.ts) starts a Temporal workflow per delivery.

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
