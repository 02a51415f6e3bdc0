import type { CurrencyTotal } from '../core/money';

/** `closing` exists only in the live workflow: closing was decided, final totals not yet stored. */
export type BillStatus = 'open' | 'closing' | 'closed';

/** How a bill's period and charges are determined; more policies come later. */
export type BillingPolicy = 'usage_based';
export const BILLING_POLICIES: readonly BillingPolicy[] = ['usage_based'];

/** A bill as the API returns it. */
export interface Bill {
  bill_id: string;
  status: BillStatus;
  policy: BillingPolicy;
  currency: string | null;
  customer_email: string | null;
  description: string | null;
  billing_period_start: string;
  billing_period_end: string;
  created_at: string;
  closed_at: string | null;
  totals: CurrencyTotal[];
  /** `live`: read from the running workflow; `stored`: read from Postgres. */
  totals_source: 'live' | 'stored';
}

/** The immutable facts of a bill, fixed at creation; carried by its workflow. */
export interface BillHeader {
  bill_id: string;
  policy: BillingPolicy;
  currency: string | null;
  customer_email: string | null;
  description: string | null;
  billing_period_start: string;
  billing_period_end: string;
  created_at: string;
  request_fingerprint: string;
}
