-- Invoices: the document (numbered once, PDF written once) and the state of its delivery.

-- One counter per invoice sequence ("INV-2026"). It is advanced in the transaction that stores
-- the invoice, so a rolled-back attempt gives its number back: numbers have no gaps.
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

-- bill_postprocess becomes the post-process state of a bill: where its invoice is, and the
-- delivery record once it is sent.
ALTER TABLE bill_postprocess
    ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'generated', 'sent', 'skipped', 'failed')),
    ADD COLUMN failed_step TEXT CHECK (failed_step IN ('generate', 'deliver')),
    ADD COLUMN error TEXT,
    ADD COLUMN recipient TEXT,
    ADD COLUMN smtp_message_id TEXT,
    ADD COLUMN smtp_response TEXT,
    ADD COLUMN sent_at TIMESTAMPTZ,
    ADD COLUMN delivery_attempts INT NOT NULL DEFAULT 0,
    ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD CHECK (status <> 'sent' OR (sent_at IS NOT NULL AND smtp_message_id IS NOT NULL AND recipient IS NOT NULL)),
    ADD CHECK (status <> 'failed' OR error IS NOT NULL);

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

-- Operators look for failed invoices.
CREATE INDEX bill_postprocess_status_idx ON bill_postprocess (status) WHERE status <> 'sent';
