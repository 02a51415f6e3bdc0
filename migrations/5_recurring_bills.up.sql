-- Recurring bills: one bill per period, linked into a series, until the series is cancelled.

ALTER TABLE bills
    ADD COLUMN interval TEXT,
    ADD COLUMN billing_anchor_day SMALLINT CHECK (billing_anchor_day BETWEEN 1 AND 31),
    -- Charged at the start of every period (prorated when partial), in minor units.
    ADD COLUMN recurring_fee_amount BIGINT CHECK (recurring_fee_amount > 0),
    ADD COLUMN recurring_fee_currency CHAR(3) CHECK (recurring_fee_currency ~ '^[A-Z]{3}$'),
    ADD COLUMN recurring_fee_description TEXT CHECK (char_length(recurring_fee_description) BETWEEN 1 AND 500),
    -- The first bill's id, shared by every bill of the cycle.
    ADD COLUMN series_id TEXT,
    ADD COLUMN previous_bill_id TEXT REFERENCES bills (bill_id),
    -- Set on the bill that was open when its series was cancelled: it is the last one.
    ADD COLUMN cancelled_at TIMESTAMPTZ,
    ADD CONSTRAINT bills_policy_check CHECK (policy IN ('usage_based', 'recurring', 'monthly')),
    ADD CONSTRAINT bills_recurring_check CHECK ((policy = 'usage_based') = (interval IS NULL) AND (interval IS NULL) = (series_id IS NULL)),
    ADD CONSTRAINT bills_fee_check CHECK (
        (recurring_fee_amount IS NULL) = (recurring_fee_currency IS NULL)
        AND (recurring_fee_amount IS NULL) = (recurring_fee_description IS NULL)
        AND (recurring_fee_amount IS NULL OR interval IS NOT NULL));

-- One bill per period of a series, and one successor per bill.
CREATE UNIQUE INDEX bills_series_period_idx ON bills (series_id, billing_period_start) WHERE series_id IS NOT NULL;
CREATE UNIQUE INDEX bills_previous_idx ON bills (previous_bill_id) WHERE previous_bill_id IS NOT NULL;
CREATE INDEX bills_series_created_idx ON bills (series_id, created_at DESC, bill_id DESC) WHERE series_id IS NOT NULL;
