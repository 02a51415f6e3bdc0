-- Invoices a finance team can send (docs/invoices.md): customers, tax rates, the document an
-- invoice freezes at finalization, bills with nothing to invoice, and the audit trail.

-- ============================================================================================
-- Customers and tax rates
-- ============================================================================================

CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY CHECK (customer_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email       TEXT NOT NULL,
    -- {line1, line2, city, postal_code, country (ISO 3166-1 alpha-2), region}
    address     JSONB NOT NULL CHECK (jsonb_typeof(address) = 'object'),
    tax_id      TEXT,
    tax_exempt  BOOLEAN NOT NULL DEFAULT false,
    locale      TEXT,
    -- Default rates of the customer's bills' line items (see line_items.tax_rates).
    tax_rates   TEXT[] NOT NULL DEFAULT '{}',
    -- A hash of the create request: a retry of the same request is not a conflict.
    request_fingerprint TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Grows with every change (If-Match-style checks, and "which answer is newer").
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX customers_created_idx ON customers (created_at DESC, customer_id DESC);

-- A rate never changes: an invoice that applied it must mean the same rate for ever. A different
-- rate is a new code.
CREATE TABLE tax_rates (
    code        TEXT PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    percentage  NUMERIC(9, 6) NOT NULL CHECK (percentage >= 0 AND percentage <= 100),
    -- Tax-inclusive prices are not supported (yet): every amount is net.
    inclusive   BOOLEAN NOT NULL DEFAULT false CHECK (NOT inclusive),
    country     CHAR(2) CHECK (country ~ '^[A-Z]{2}$'),
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER tax_rates_immutable BEFORE UPDATE OR DELETE ON tax_rates
    FOR EACH ROW EXECUTE FUNCTION records_immutable();

-- A bill may name its customer, and default rates for its line items (before the customer's).
ALTER TABLE bills ADD COLUMN customer_id TEXT REFERENCES customers (customer_id);
ALTER TABLE bills ADD COLUMN tax_rates TEXT[];
-- A line item's own rates: NULL takes the bill's (then the customer's); '{}' is no tax.
ALTER TABLE line_items ADD COLUMN tax_rates TEXT[];

-- ============================================================================================
-- What an invoice and a credit note froze when they were issued
-- ============================================================================================

-- invoices/document.ts InvoiceParties: the seller, the buyer as it was, the tax per rate and
-- currency and the totals. NULL on invoices finalized by 1.0.0 (no tax, the bill's totals).
ALTER TABLE invoices ADD COLUMN document JSONB;

CREATE OR REPLACE FUNCTION invoices_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'invoice % cannot be deleted', OLD.invoice_number USING ERRCODE = 'FE003';
    END IF;
    IF OLD.pdf IS NOT NULL
       OR (NEW.bill_id, NEW.invoice_number, NEW.sequence, NEW.sequence_value, NEW.issued_at)
          IS DISTINCT FROM (OLD.bill_id, OLD.invoice_number, OLD.sequence, OLD.sequence_value, OLD.issued_at)
       OR (OLD.document IS NOT NULL AND NEW.document IS DISTINCT FROM OLD.document) THEN
        RAISE EXCEPTION 'invoice % is immutable', OLD.invoice_number USING ERRCODE = 'FE003';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- total is the gross (net + tax) of the currency; net and tax split it. Rows of 1.0.0 had no tax.
ALTER TABLE invoice_balances ADD COLUMN tax BIGINT NOT NULL DEFAULT 0 CHECK (tax >= 0);
ALTER TABLE invoice_balances ADD CONSTRAINT invoice_balances_tax_within_total CHECK (tax <= total);

-- The credit note's parties (its invoice's) and its tax split: {seller, buyer, taxes, totals}.
ALTER TABLE credit_notes ADD COLUMN document JSONB;

CREATE OR REPLACE FUNCTION credit_notes_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.email_status <> 'pending'
       OR (NEW.credit_note_id, NEW.bill_id, NEW.credit_note_number, NEW.sequence, NEW.sequence_value, NEW.kind,
           NEW.reason, NEW.request_fingerprint, NEW.issued_at, NEW.pdf, NEW.pdf_sha256, NEW.document)
          IS DISTINCT FROM (OLD.credit_note_id, OLD.bill_id, OLD.credit_note_number, OLD.sequence, OLD.sequence_value,
           OLD.kind, OLD.reason, OLD.request_fingerprint, OLD.issued_at, OLD.pdf, OLD.pdf_sha256, OLD.document) THEN
        RAISE EXCEPTION 'credit note % is immutable', OLD.credit_note_number USING ERRCODE = 'FE003';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- A bill closed with nothing on it gets no invoice (and no number: the series stays gap-free).
ALTER TABLE bill_postprocess DROP CONSTRAINT bill_postprocess_status_check;
ALTER TABLE bill_postprocess ADD CONSTRAINT bill_postprocess_status_check
    CHECK (status IN ('pending', 'generated', 'sent', 'skipped', 'failed', 'no_invoice'));
CREATE OR REPLACE TRIGGER bill_postprocess_final
    BEFORE UPDATE ON bill_postprocess
    FOR EACH ROW WHEN (OLD.status IN ('sent', 'skipped', 'no_invoice') AND NEW IS DISTINCT FROM OLD)
    EXECUTE FUNCTION bill_postprocess_final();

-- ============================================================================================
-- The audit trail: who changed what, when, and why
-- ============================================================================================
-- One row per billing mutation, written in the mutation's transaction. Line items are their own
-- record (line_items.actor, created_at), which GET /bills/:billId/audit merges in.

CREATE TABLE audit_log (
    audit_id   BIGSERIAL PRIMARY KEY,
    -- The bill it concerns; NULL for a customer's or a tax rate's changes.
    bill_id    TEXT,
    -- What changed: bill, invoice, payment, credit_note, customer, tax_rate; and its id.
    subject    TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    -- The API key id, `anonymous` with authentication off, or `system` (a timer, a workflow).
    actor      TEXT NOT NULL,
    reason     TEXT,
    data       JSONB,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_bill_idx ON audit_log (bill_id, audit_id) WHERE bill_id IS NOT NULL;
CREATE INDEX audit_log_subject_idx ON audit_log (subject, subject_id, audit_id);
CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION records_immutable();

ALTER TABLE line_items ADD COLUMN actor TEXT;

-- append_line_items as 2_append_line_items_by_key defines it, with each item's own tax rates and
-- the actor who added it (a released function is replaced whole: CREATE OR REPLACE takes the body).
CREATE OR REPLACE FUNCTION append_line_items(p_bill_id TEXT, p_items JSONB, p_batches JSONB, p_source TEXT)
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

    INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, metadata, tax_rates, actor, source_ref)
    SELECT i.line_item_id, p_bill_id, base + i.ord, i.amount, i.currency, i.description, i.metadata, i.tax_rates, i.actor, p_source
      FROM ROWS FROM (jsonb_to_recordset(p_items)
             AS (line_item_id UUID, amount BIGINT, currency TEXT, description TEXT, metadata JSONB,
                 tax_rates TEXT[], actor TEXT))
             WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, tax_rates, actor, ord)
    ON CONFLICT (line_item_id) DO NOTHING;
    next_position := base + jsonb_array_length(p_items);

    -- A new statement, so a new snapshot: rows a concurrent writer committed while this insert
    -- waited on them are seen here. Each item's row is found by its primary key (the LATERAL
    -- subquery with LIMIT is never flattened into a join the planner may hash).
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
               'line_item_id', i.line_item_id,
               'created_at', li.created_at,
               'same', li.bill_id = p_bill_id AND li.amount = i.amount AND li.currency = i.currency
                   AND li.description = i.description AND li.metadata IS NOT DISTINCT FROM i.metadata
                   AND li.tax_rates IS NOT DISTINCT FROM i.tax_rates)
             ORDER BY i.ord), '[]')
      INTO items
      FROM ROWS FROM (jsonb_to_recordset(p_items)
             AS (line_item_id UUID, amount BIGINT, currency TEXT, description TEXT, metadata JSONB,
                 tax_rates TEXT[], actor TEXT))
             WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, tax_rates, actor, ord)
      CROSS JOIN LATERAL (SELECT l.bill_id, l.amount, l.currency, l.description, l.metadata, l.tax_rates, l.created_at
                            FROM line_items l WHERE l.line_item_id = i.line_item_id LIMIT 1) li;

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
                INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, metadata, tax_rates, actor, source_ref)
                SELECT i.line_item_id, p_bill_id, next_position + i.ord, i.amount, i.currency, i.description, i.metadata, i.tax_rates, i.actor, p_source
                  FROM line_item_batches b,
                       ROWS FROM (jsonb_to_recordset(b.items)
                         AS (line_item_id UUID, amount BIGINT, currency TEXT, description TEXT, metadata JSONB,
                 tax_rates TEXT[], actor TEXT))
                         WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, tax_rates, actor, ord)
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

-- Every outbox event says who made its change (the audit trail's actor): {id, type, created_at,
-- actor, data}. `system` for the service's own changes (a timer, a finalization, a delivery).
DROP FUNCTION webhook_emit(TEXT, JSON, TEXT);
CREATE FUNCTION webhook_emit(p_type TEXT, p_data JSON, p_webhook_id TEXT DEFAULT NULL, p_actor TEXT DEFAULT 'system')
RETURNS TEXT AS $$
DECLARE
    v_id TEXT := 'evt_' || replace(gen_random_uuid()::text, '-', '');
    -- Milliseconds, as the API writes times: a page cursor holds exactly this value.
    v_at TIMESTAMPTZ := date_trunc('milliseconds', clock_timestamp());
BEGIN
    INSERT INTO webhook_events (event_id, type, created_at, payload)
    -- Written out rather than json_build_object, which puts spaces around every colon.
    VALUES (v_id, p_type, v_at, ('{"id":' || to_json(v_id) || ',"type":' || to_json(p_type)
        || ',"created_at":' || to_json(to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        || ',"actor":' || to_json(COALESCE(p_actor, 'system'))
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
