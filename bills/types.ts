import type { CurrencyTotal } from '../core/money';
import type { InvoiceSummary } from '../postprocess/types';

/** `closing` exists only in the live workflow: closing was decided, final totals not yet stored. */
export type BillStatus = 'open' | 'closing' | 'closed';

/** How a bill's period and charges are determined; more policies come later. */
export type BillingPolicy = 'usage_based';
export const BILLING_POLICIES: readonly BillingPolicy[] = ['usage_based'];

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
}

/** What a bill's workflow carries: its creation facts and the request that created it. */
export interface BillHeader extends BillFields {
  request_fingerprint: string;
}
