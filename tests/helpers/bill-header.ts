/** A bill header as a workflow receives it, for tests that drive the workflow or its state directly. */
import type { BillHeader } from '../../bills/types';

export function billHeader(over: Partial<BillHeader> = {}): BillHeader {
  const now = new Date();
  return {
    bill_id: 'b-1',
    policy: 'usage_based',
    currency: null,
    customer_email: null,
    customer_id: null,
    tax_rates: null,
    prices: null,
    usage_alerts: null,
    description: null,
    billing_period_start: now.toISOString(),
    billing_period_end: new Date(now.getTime() + 3_600_000).toISOString(),
    created_at: now.toISOString(),
    interval: null,
    billing_anchor_day: null,
    recurring_fee: null,
    series_id: null,
    previous_bill_id: null,
    grace_period: 'PT0S',
    payment_terms: 'P30D',
    request_fingerprint: 'fp',
    ...over,
  };
}

/** The activity settings a bill's workflow carries: short, for tests. */
export const activitySettings = { timeoutMs: 30_000, retryInitialMs: 200, retryMaxIntervalMs: 10_000, localTimeoutMs: 5_000 };

/** One line item to add, with its id. */
export const lineItem = (id: string, amount: number, currency = 'USD') => ({
  line_item_id: id,
  amount,
  currency,
  description: `item ${id}`,
  metadata: null,
});
