import type { CurrencyTotal, TotalsByCurrency } from '../core/money';

/** A persisted line item as the API returns it. */
export interface LineItem {
  line_item_id: string;
  bill_id: string;
  amount: number;
  currency: string;
  description: string;
  metadata: Record<string, unknown> | null;
  created_at: string;
}

/** A validated line item, before it is persisted. */
export interface NewLineItem {
  amount: number;
  currency: string;
  description: string;
  metadata: Record<string, unknown> | null;
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

/** The body of POST /bills/:billId/line-items, and one item of a batch. */
export interface AddLineItemBody {
  /** Integer minor units (cents for USD, yen for JPY), > 0. */
  amount: number;
  /** ISO 4217 code, e.g. USD, GEL, JPY, KWD. */
  currency: string;
  /** 1-500 characters. */
  description: string;
  /** Any JSON object up to 4 KB. */
  metadata?: Record<string, unknown>;
}

/** The body of POST /bills/:billId/line-items/batch. */
export interface AddLineItemsBody {
  /** 1-1000 line items. */
  items: AddLineItemBody[];
}

/** The query of GET /bills/:billId/line-items. */
export interface ListLineItemsQuery {
  /** 1-1000, default 100. */
  limit?: number;
  cursor?: string;
}

/**
 * A staged batch as its bill's workflow receives it (claim check, migration 6): the id of its
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
