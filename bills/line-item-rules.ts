/**
 * Line item rules. Pure: the use cases run them on a request once its shape is checked, and the
 * workflow runs the money rules again in its update validator, against the bill's live state.
 */
import { failedPrecondition } from '../core/errors';
import { canAdd, isValidAmount, type TotalsByCurrency } from '../core/money';
import { canonicalJson } from '../core/canonical-json';
import { checkSupportedCurrency, fieldError, parseCurrency } from '../core/validate';
import type { LineItem, NewLineItem, StagedBatchRef } from './types';

export const MAX_METADATA_BYTES = 4096;

/** A line item as a request gives it, its shape checked: `metadata` may be absent or null. */
export type LineItemRequest = Omit<NewLineItem, 'metadata' | 'tax_rates' | 'actor'> & {
  metadata?: NewLineItem['metadata'];
  tax_rates?: string[] | null;
};

/**
 * A requested line item under the rules its shape cannot say: a currency that exists, metadata of
 * at most 4 KB as JSON. A refusal names the field under `at` (`items[3].`, `recurring_fee.`).
 */
export function newLineItem(item: LineItemRequest, at = ''): NewLineItem {
  checkSupportedCurrency(item.currency, `${at}currency`);
  const metadata = item.metadata ?? null;
  if (metadata !== null && new TextEncoder().encode(JSON.stringify(metadata)).length > MAX_METADATA_BYTES) {
    throw fieldError(`${at}metadata`, `must be at most ${MAX_METADATA_BYTES} bytes as JSON`);
  }
  const rates = item.tax_rates == null ? {} : { tax_rates: item.tax_rates };
  return { amount: item.amount, currency: item.currency, description: item.description, metadata, ...rates };
}

/**
 * The rules of one line item's money, wherever the item comes from: an amount of minor units that
 * stays exact, in a currency a bill can hold. The workflow's update validator runs them again on
 * what reaches it; the shape of a request is checked at the edge.
 */
export function checkLineItemValues(item: { amount: unknown; currency: unknown }): void {
  if (!isValidAmount(item.amount)) {
    throw fieldError('amount', 'must be a positive integer number of minor units within the safe integer range');
  }
  parseCurrency(item.currency);
}

export const MAX_BATCH_ITEMS = 1000;

/** The bill-dependent rules for a whole batch: every currency's sum fits, the bill's totals with it too. */
export function checkBatchFitsBill(items: NewLineItem[], bill: BillForAdds): void {
  for (const [currency, t] of Object.entries(batchTotals(items))) checkAmountFitsBill(currency, t.amount, bill);
}

type BillForAdds = { status: string; currency: string | null; totals: TotalsByCurrency; pending: TotalsByCurrency };

/** The bill-dependent rules: status, the bill's currency, and totals staying exact. */
export function checkLineItemFitsBill(item: NewLineItem, bill: BillForAdds): void {
  checkAmountFitsBill(item.currency, item.amount, bill);
}

function checkAmountFitsBill(currency: string, amount: number, bill: BillForAdds): void {
  // A draft (its grace period runs) still takes the period's late usage.
  if (bill.status !== 'open' && bill.status !== 'draft') {
    throw failedPrecondition(`bill is ${bill.status}: it accepts no more line items`, { status: bill.status });
  }
  if (bill.currency !== null && currency !== bill.currency) {
    throw failedPrecondition(`this bill accepts only ${bill.currency}`, { field: 'currency', allowed: bill.currency });
  }
  const total = (bill.totals[currency]?.amount ?? 0) + (bill.pending[currency]?.amount ?? 0);
  if (!canAdd(total, amount)) throw totalTooLarge(currency);
}

const totalTooLarge = (currency: string) =>
  failedPrecondition(`the ${currency} total of this bill would exceed the largest exact amount`, { field: 'amount' });

/** A batch's sums per currency, which must themselves stay exact. */
export function batchTotals(items: NewLineItem[]): TotalsByCurrency {
  const sums: TotalsByCurrency = {};
  for (const item of items) {
    const entry = (sums[item.currency] ??= { amount: 0, count: 0 });
    if (!canAdd(entry.amount, item.amount)) throw totalTooLarge(item.currency);
    entry.amount += item.amount;
    entry.count += 1;
  }
  return sums;
}

/** The workflow's check of a staged batch reference: well formed, and every currency's sum fits. */
export function checkStagedBatchFitsBill(ref: StagedBatchRef, bill: BillForAdds): void {
  const entries = Object.entries(ref?.totals ?? {});
  const counted = entries.reduce((n, [, t]) => n + (Number.isSafeInteger(t?.count) && t.count > 0 ? t.count : NaN), 0);
  if (
    typeof ref?.batch_id !== 'string' ||
    !Number.isInteger(ref.item_count) ||
    ref.item_count < 1 ||
    ref.item_count > MAX_BATCH_ITEMS ||
    counted !== ref.item_count
  ) {
    throw fieldError('items', 'a staged batch needs its id, its item count and its sums per currency');
  }
  for (const [currency, t] of entries) {
    parseCurrency(currency, 'items.currency');
    if (!isValidAmount(t.amount)) throw fieldError('items.amount', 'sums must be positive safe integers');
    checkAmountFitsBill(currency, t.amount, bill);
  }
}

/** Whether a stored line item is the one a request describes (a retry, not a different item). */
export function isSameLineItem(stored: LineItem, item: NewLineItem): boolean {
  return (
    stored.amount === item.amount &&
    stored.currency === item.currency &&
    stored.description === item.description &&
    canonicalJson(stored.metadata) === canonicalJson(item.metadata) &&
    canonicalJson(stored.tax_rates) === canonicalJson(item.tax_rates ?? null)
  );
}
