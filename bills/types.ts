import type { Price } from '../usage/rating';
import type { MeterUsage, UsageAlert } from '../usage/types';
import type { CurrencyTotal, TotalsByCurrency } from '../core/money';
import type { InvoiceSummary, PaymentStatus } from '../invoices/types';

/**
 * `draft`: the billing period has ended and the grace period runs: line items for the period are
 * still taken, and the totals are live; it becomes `closed` (final, invoiced) at the end of the
 * grace period or on POST /bills/:billId/finalize. `closing` exists only in the live workflow:
 * closing was decided, final totals not yet stored.
 */
export type BillStatus = 'open' | 'draft' | 'closing' | 'closed';

/**
 * How a bill's period is determined. `usage_based`: one period, ending when the client says.
 * `recurring`: periods of `interval` one after another, each its own bill, until cancelled.
 * `monthly`: recurring with `P1M`.
 */
export type BillingPolicy = 'usage_based' | 'recurring' | 'monthly';
export const BILLING_POLICIES: readonly BillingPolicy[] = ['usage_based', 'recurring', 'monthly'];

/** Charged once at the start of every period of a recurring bill (prorated for a partial one). */
export interface RecurringFee {
  /** Minor units of `currency`, for a full period. */
  amount: number;
  currency: string;
  description: string;
}

/** The facts fixed when a bill is created. */
export interface BillFields {
  bill_id: string;
  policy: BillingPolicy;
  currency: string | null;
  customer_email: string | null;
  /**
   * The customer invoices are issued to (POST /customers); its email is used when
   * `customer_email` is not given. (A bill created by 1.0.0 has neither field in its workflow.)
   */
  customer_id: string | null;
  /** Default tax rates of the bill's line items, before the customer's; null: the customer's. */
  tax_rates: string[] | null;
  /** Prices of metered usage, rated at the close (docs/usage.md); null: none. */
  prices: Price[] | null;
  /** Thresholds of the usage estimate that emit `usage.threshold_reached`; null: none. */
  usage_alerts: UsageAlert[] | null;
  description: string | null;
  billing_period_start: string;
  billing_period_end: string;
  created_at: string;
  /** Recurring bills: the ISO 8601 duration of a period (`P1M`, `P1W`, `P1D`, `PT5S`). */
  interval: string | null;
  /** Recurring bills of months or years: the day of the month periods end on (1-31). */
  billing_anchor_day: number | null;
  recurring_fee: RecurringFee | null;
  /** Every bill of one recurring cycle shares it: the first bill's id. */
  series_id: string | null;
  /** The bill of the period before this one in the series. */
  previous_bill_id: string | null;
  /**
   * ISO 8601 duration after the period's end in which late usage still counts (the bill is a
   * `draft`); `PT0S`: no draft.
   */
  grace_period: string;
  /** ISO 8601 duration from the invoice's finalization to its due date. */
  payment_terms: string;
}

/** A bill as the API returns it. */
export interface Bill extends BillFields {
  status: BillStatus;
  closed_at: string | null;
  totals: CurrencyTotal[];
  /** `live`: read from the running workflow; `stored`: read from Postgres. */
  totals_source: 'live' | 'stored';
  /**
   * The ledger version of `totals`: it grows with every write of line items, so of two answers
   * about one bill, the one with the higher version is the newer.
   */
  version: number;
  /** Null while the bill is open; once closed, where its invoice is. */
  invoice: InvoiceSummary | null;
  /** When its series was cancelled: this bill is the last of it. */
  cancelled_at: string | null;
  /** When it became a draft (its period ended with a grace period to run). */
  drafted_at: string | null;
  /** The end of its grace period: a draft is finalized then at the latest. */
  grace_period_end: string;
  /** The bill of the next period, once it is open. */
  next_bill_id: string | null;
  /** GET /bills/:billId of a bill with prices: each priced meter's usage so far and its estimate. */
  usage?: MeterUsage[];
}

/** A page of bills, newest first. */
export interface BillPage {
  bills: Bill[];
  next_cursor: string | null;
}

/** A bill just closed, with its first line items. */
export interface ClosedBill {
  bill: Bill;
  line_items: LineItem[];
  next_cursor: string | null;
}

/** What a bill's workflow carries: its creation facts and the request that created it. */
export interface BillHeader extends BillFields {
  request_fingerprint: string;
  /** Who created it, for the audit trail (`system` for a series' next period); absent in 1.0.0 headers. */
  created_by?: string;
}

/** Per currency: amount and line item count, as decimal strings (sums may pass 2^53). */
export type TotalsText = Record<string, { amount: string; count: string }>;

export type DifferenceKind =
  /** bill_totals differs from the sum of the line items. */
  | 'stored_vs_line_items'
  /** The open bill's workflow counts something else than the database holds. */
  | 'live_vs_stored'
  /** The bill is open in the database but its workflow is not running (missing, terminated, failed). */
  | 'workflow_not_running'
  /** The workflow did not answer its query in time (reported, as nothing was checked). */
  | 'workflow_unreachable';

export interface BillDifference {
  bill_id: string;
  status: 'open' | 'closed';
  kind: DifferenceKind;
  line_items: TotalsText;
  stored: TotalsText;
  live: TotalsText | null;
}

/**
 * An invoice whose account disagrees with its records: a balance that is not the bill's final
 * total, the sum of its credit notes or of its payments; or a status its amounts do not give.
 * Amounts are decimal strings; `amount due = total − credited − paid` holds by construction.
 */
export interface InvoiceDifference {
  bill_id: string;
  invoice_number: string;
  currency: string;
  status: PaymentStatus;
  expected_status: PaymentStatus;
  total: string;
  invoiced: string;
  credited: string;
  credit_notes: string;
  paid: string;
  payments: string;
}

export interface ReconcileReport {
  /** True when every bill and every invoice checked agrees. */
  ok: boolean;
  checked_at: string;
  bills_checked: number;
  open_bills_checked_live: number;
  line_items_checked: string;
  differences: BillDifference[];
  /** Finalized invoices checked: each currency's balance against the records it sums. */
  invoices_checked: number;
  invoice_differences: InvoiceDifference[];
  /** Closed bills with prices, rated again from their events: events stored vs aggregated vs rated vs invoiced. */
  usage_checked: number;
  usage_differences: UsageDifference[];
  duration_ms: number;
  /** Of which: the one database snapshot, and the live queries (with any rereads). */
  database_ms: number;
  live_ms: number;
}

// --- Line items: they only ever join a bill through its workflow ---

/** A persisted line item as the API returns it. */
export interface LineItem {
  line_item_id: string;
  bill_id: string;
  amount: number;
  currency: string;
  description: string;
  metadata: Record<string, unknown> | null;
  /** The line's own tax rates; null: the bill's (or its customer's) apply at finalization. */
  tax_rates: string[] | null;
  created_at: string;
}

/** A validated line item, before it is persisted. */
export interface NewLineItem {
  amount: number;
  currency: string;
  description: string;
  metadata: Record<string, unknown> | null;
  /** Present only when the request named rates: an untaxed add carries no extra bytes through Temporal. */
  tax_rates?: string[];
  /** Who added it (the API key id); absent in line items of 1.0.0 workflows. */
  actor?: string;
}

/** A line item added, and the bill's totals with it. */
export interface AddedLineItem {
  line_item: LineItem;
  totals: CurrencyTotal[];
}

/** A batch added. */
export interface AddedLineItems {
  /** The ids of the batch's line items, in the order sent (the same on every retry with the key). */
  line_item_ids: string[];
  totals: CurrencyTotal[];
}

/** A page of a bill's line items, oldest first. */
export interface LineItemPage {
  line_items: LineItem[];
  next_cursor: string | null;
}

/**
 * A staged batch as its bill's workflow receives it (claim check): the id of its
 * stored items, their count, and their sums per currency, which the workflow reserves and checks
 * like a single add's amount. The items themselves never pass through Temporal.
 */
export interface StagedBatchRef {
  batch_id: string;
  item_count: number;
  totals: TotalsByCurrency;
}

/**
 * A bill's ledger as one write left it: its version (the bill's position counter, bumped under its
 * row lock, so versions follow commit order) and its running totals. A newer snapshot has a higher
 * version; the workflow adopts only those.
 */
export interface LedgerSnapshot {
  version: number;
  totals: TotalsByCurrency;
}

/** One change of a bill or its invoice: who, when, what, why. */
export interface AuditRecord {
  at: string;
  /** bill, line_item, invoice, payment, credit_note. */
  subject: string;
  subject_id: string;
  action: string;
  /** The API key id, `anonymous` with authentication off, `system` for the service's own changes. */
  actor: string;
  /** The reason given (credit notes, voids). */
  reason: string | null;
  data: Record<string, unknown> | null;
}

/** GET /bills/:billId/audit: oldest first. */
export interface AuditPage {
  entries: AuditRecord[];
  next_cursor: string | null;
}

/** A closed bill's usage line that its events, rated again, do not reproduce. */
export interface UsageDifference {
  bill_id: string;
  meter: string;
  currency: string;
  /** Events stored for the bill and meter, and how many lie in its period (the aggregated ones). */
  events: number;
  events_in_period: number;
  aggregate: string;
  /** Minor units: what rating the events now gives (usage line + minimum shortfall), and what the bill holds. */
  rated: number;
  invoiced: number;
}
