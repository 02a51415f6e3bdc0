/**
 * What the bill and line item endpoints take, declared once, as Encore declares request shapes (see
 * invoices/requests.ts for the tags the build reads, and the shared field types). Unknown fields
 * are ignored here, as Encore ignores them. The rest is domain rules in bills/validation.ts and
 * bills/line-item-rules.ts: the period end and cadence, currencies that exist, metadata's size.
 */
import type { IsEmail, Max, MaxLen, Min, MinLen } from 'encore.dev/validate';
import type { Amount, Currency, Id, Text, Timestamp } from '../invoices/requests';
import type { InvoiceStatus, PaymentStatus } from '../invoices/types';
import type { TaxRateCodes } from '../customers/requests';
import type { PriceBody, UsageAlertBody } from '../usage/requests';
import type { BillingPolicy } from './types';

/** A recurring bill's fee, as a create request gives it. */
export interface RecurringFeeBody {
  /** Minor units of `currency`, for a full period. */
  amount: Amount;
  currency: Currency;
  description: Text & MaxLen<500>;
}

/**
 * The day of the month periods end on (1-31).
 * @asType integer
 * @errorMessage must be an integer from 1 to 31
 */
export type AnchorDay = number & Min<1> & Max<31>;

/** The body of POST /bills. Null is the same as absent. */
export interface CreateBillBody {
  /** 1-64 of [A-Za-z0-9_.:-]; generated when absent. */
  bill_id?: Id | null;
  /**
   * RFC 3339, in the future; the bill closes itself then. Required for `usage_based`; for a
   * recurring bill it ends the first, possibly partial, period (computed from `interval` when absent).
   */
  billing_period_end?: Timestamp | null;
  /** Restricts the bill to one ISO 4217 currency. */
  currency?: Currency | null;
  /** `usage_based` (default), `recurring` (needs `interval`) or `monthly` (recurring, `P1M`). */
  policy?: BillingPolicy | null;
  /** Recurring bills: an ISO 8601 duration, `P1M`, `P1W`, `P1D`, `PT5S`, ... */
  interval?: string | null;
  /** Recurring bills of months or years: the day of the month periods end on (1-31; default 1, a calendar month). */
  billing_anchor_day?: AnchorDay | null;
  /** Recurring bills: added as a line item at the start of every period, prorated for a partial one. */
  recurring_fee?: RecurringFeeBody | null;
  customer_email?: (string & MaxLen<254> & IsEmail) | null;
  /** A customer (POST /customers): the invoice's buyer, frozen at finalization; its email when `customer_email` is absent. */
  customer_id?: Id | null;
  /** Default tax rates of the bill's line items (before the customer's). */
  tax_rates?: TaxRateCodes | null;
  /**
   * Prices of metered usage (POST /events), rated into line items at the close; a series passes
   * them to every period's bill. At most 20, one per meter and currency.
   */
  prices?: PriceBody[] | null;
  /** Usage estimates (per currency) that emit `usage.threshold_reached` once each per period; at most 10. */
  usage_alerts?: UsageAlertBody[] | null;
  description?: (Text & MaxLen<500>) | null;
  /**
   * ISO 8601 duration (days, hours, minutes, seconds) after the end of the period during which
   * the bill is a `draft` and still takes line items; default `PT0S`, at most `P30D`. A series
   * passes it on to every period's bill.
   * @errorMessage must be an ISO 8601 duration such as P30D
   */
  grace_period?: string | null;
  /**
   * ISO 8601 duration from finalization to the invoice's due date; default `P30D`, at most `P365D`.
   * @errorMessage must be an ISO 8601 duration such as P30D
   */
  payment_terms?: string | null;
}

/** The query of GET /bills. */
export interface ListBillsQuery {
  status?: 'open' | 'draft' | 'closed';
  /**
   * Closed bills whose invoice is in this state: a delivery state (`failed`, `sent`, ...) or a
   * payment state (`open`, `partially_paid`, `paid`, `overdue`, `uncollectible`, `void`).
   * @errorMessage must be one of pending, generated, sent, skipped, failed, no_invoice, open, partially_paid, paid, overdue, uncollectible, void
   */
  invoice_status?: InvoiceStatus | PaymentStatus;
  /** The bills of one recurring series (its first bill's id), newest period first. */
  series_id?: Id;
  /**
   * 1-100, default 20. The largest page is configured (LIST_BILLS_MAX_LIMIT), so it is not declared here.
   * @asType integer
   */
  limit?: number & Min<1>;
  cursor?: string;
  /**
   * `stored` (default): every bill's totals from Postgres, exact for every committed line item, in
   * one query. `live`: open bills' totals from their workflows (a query each; slower).
   */
  totals?: 'stored' | 'live';
}

/** The body of POST /bills/:billId/cancel. */
export interface CancelBillBody {
  /** Close the bill now instead of at the end of its period. */
  close_now?: boolean | null;
}

/** The query of GET /admin/reconcile. */
export interface ReconcileQuery {
  /** Only this bill. */
  bill_id?: Id;
}

/** The body of POST /bills/:billId/line-items, and one item of a batch. */
export interface AddLineItemBody {
  /** Integer minor units (cents for USD, yen for JPY), > 0. */
  amount: Amount;
  /** ISO 4217 code, e.g. USD, GEL, JPY, KWD. */
  currency: Currency;
  /** 1-500 characters. */
  description: Text & MaxLen<500>;
  /** Any JSON object up to 4 KB. */
  metadata?: Record<string, unknown> | null;
  /** The line's tax rates (codes of POST /tax-rates); absent: the bill's, else the customer's; []: no tax. */
  tax_rates?: TaxRateCodes | null;
}

/** The body of POST /bills/:billId/line-items/batch. */
export interface AddLineItemsBody {
  /**
   * 1-1000 line items.
   * @errorMessage must be an array of 1 to 1000 line items
   */
  items: AddLineItemBody[] & MinLen<1> & MaxLen<1000>;
}

/** The query of GET /bills/:billId/audit. */
export interface ListAuditQuery {
  /**
   * 1-1000, default 100.
   * @asType integer
   */
  limit?: number & Min<1>;
  cursor?: string;
}

/** The query of GET /bills/:billId/line-items. */
export interface ListLineItemsQuery {
  /**
   * 1-1000, default 100. The largest page is configured (LIST_LINE_ITEMS_MAX_LIMIT), so it is not declared here.
   * @asType integer
   */
  limit?: number & Min<1>;
  cursor?: string;
}
