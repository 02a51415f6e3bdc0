import type { AppliedTier, Price } from './rating';

/** A threshold of a bill's usage estimate in one currency, in minor units. */
export interface UsageAlert {
  currency: string;
  amount: number;
}

export type Aggregation = 'count' | 'sum' | 'max' | 'unique_count' | 'latest';

export interface Meter {
  code: string;
  name: string;
  aggregation: Aggregation;
  field: string | null;
  created_at: string;
}

export interface MeterList {
  meters: Meter[];
}

/** What became of one event: stored now, seen before, or refused with the reason. */
export type EventResult =
  | { event_id: string; meter: string; status: 'accepted'; bill_id: string }
  | { event_id: string; meter: string; status: 'duplicate' }
  | { event_id: string; meter: string; status: 'refused'; reason: string };

export interface IngestResult {
  results: EventResult[];
}

/** One priced meter of a bill: the aggregate so far and what it costs. */
export interface MeterUsage {
  price: Price;
  aggregate: string;
  billable: string;
  tiers: AppliedTier[];
  /** The usage line's amount so far, minor units (rounded once, half up). */
  estimated_amount: number;
  /** The committed minimum's shortfall so far. */
  minimum_shortfall: number;
}

/** GET /bills/:billId/usage. */
export interface BillUsage {
  bill_id: string;
  period: { start: string; end: string };
  meters: MeterUsage[];
}
