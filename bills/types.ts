import type { CurrencyTotal } from '../core/money';
import type { InvoiceSummary } from '../postprocess/types';

/** `closing` exists only in the live workflow: closing was decided, final totals not yet stored. */
export type BillStatus = 'open' | 'closing' | 'closed';

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
}

/** A bill as the API returns it. */
export interface Bill extends BillFields {
  status: BillStatus;
  closed_at: string | null;
  totals: CurrencyTotal[];
  /** `live`: read from the running workflow; `stored`: read from Postgres. */
  totals_source: 'live' | 'stored';
  /** Null while the bill is open; once closed, where its invoice is. */
  invoice: InvoiceSummary | null;
  /** When its series was cancelled: this bill is the last of it. */
  cancelled_at: string | null;
  /** The bill of the next period, once it is open. */
  next_bill_id: string | null;
}

/** What a bill's workflow carries: its creation facts and the request that created it. */
export interface BillHeader extends BillFields {
  request_fingerprint: string;
}
