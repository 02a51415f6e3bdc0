-- Claim check for batches: the API stores a batch here first and sends its bill's workflow only a
-- reference with per-currency sums; the workflow's activity moves the rows into line_items.
-- Measured before this (README, Performance): each 1,000-item batch crossed the Temporal server
-- twice as a payload (the update, then the activity input), and the server was the bound.
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
