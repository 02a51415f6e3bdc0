-- Invoices after the close (docs/invoices.md): a grace period in which a bill is a draft that still
-- takes late usage, and an invoice that lives on after it is sent: payments, credit notes, void,
-- overdue. An issued invoice and its number never change; what moves is its account.

-- A draft is an open bill past its billing period: it takes line items until its grace period
-- ends. Its row stays `open` (every write path checks that), with the time it became a draft.
ALTER TABLE bills
    ADD COLUMN grace_period  TEXT NOT NULL DEFAULT 'PT0S',
    ADD COLUMN payment_terms TEXT NOT NULL DEFAULT 'P30D',
    ADD COLUMN drafted_at    TIMESTAMPTZ,
    ADD CHECK (drafted_at IS NULL OR drafted_at >= billing_period_end);

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
