/**
 * A bill as the API shows it, from its stored row and (while open) its workflow's live answer.
 * Webhook events carry the same shape, so a receiver sees what GET /bills/:billId would show.
 */
import { totalsList } from '../core/money';
import type { LiveBill } from './messages';
import { gracePeriodMs } from './periods';
import type { BillRow } from './store';
import type { Bill, BillHeader } from './types';

export function toBill(row: BillRow, live: LiveBill | null): Bill {
  const status = live?.status ?? row.status;
  return {
    bill_id: row.bill_id,
    status,
    policy: row.policy,
    currency: row.currency,
    customer_email: row.customer_email,
    customer_id: row.customer_id ?? null,
    tax_rates: row.tax_rates ?? null,
    prices: row.prices ?? null,
    usage_alerts: row.usage_alerts ?? null,
    description: row.description,
    billing_period_start: row.billing_period_start,
    billing_period_end: row.billing_period_end,
    created_at: row.created_at,
    interval: row.interval,
    billing_anchor_day: row.billing_anchor_day,
    recurring_fee: row.recurring_fee,
    series_id: row.series_id,
    previous_bill_id: row.previous_bill_id,
    cancelled_at: row.cancelled_at,
    next_bill_id: row.next_bill_id,
    grace_period: row.grace_period,
    payment_terms: row.payment_terms,
    drafted_at: row.drafted_at,
    grace_period_end: new Date(Date.parse(row.billing_period_end) + gracePeriodMs(row.grace_period)).toISOString(),
    closed_at: live?.closed_at ?? row.closed_at,
    totals: live ? live.totals : totalsList(row.totals),
    totals_source: live ? 'live' : 'stored',
    version: live ? live.version : row.version,
    // Closed a moment ago (the workflow says so before our row was read): its invoice is pending.
    invoice:
      row.invoice ??
      (status === 'closed'
        ? { status: 'pending', invoice_number: null, sent_at: null, error: null, payment_status: null, due_at: null, amounts: [] }
        : null),
  };
}

/** The row of a bill just created: open, nothing added yet. */
export function newBillRow(header: BillHeader): BillRow {
  return {
    ...header,
    status: 'open',
    closed_at: null,
    drafted_at: null,
    invoice: null,
    cancelled_at: null,
    next_bill_id: null,
    version: 0,
    totals: {},
  };
}
