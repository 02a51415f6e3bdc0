/**
 * What operators see of a bill in Temporal's own tools: typed search attributes (kept current by
 * the workflow as the bill moves) and the one-line summary of its workflow. Registered on the
 * embedded dev server at start, checked on a cluster by the worker (temporal/search-attributes.ts).
 * Safe in workflow code: @temporalio/common only.
 */
import { SearchAttributeType, defineSearchAttributeKey, type SearchAttributePair } from '@temporalio/common';
import type { BillHeader, BillStatus } from './types';

export const BillStatusKey = defineSearchAttributeKey('BillStatus', SearchAttributeType.KEYWORD);
export const BillPolicyKey = defineSearchAttributeKey('BillPolicy', SearchAttributeType.KEYWORD);
export const BillCustomerKey = defineSearchAttributeKey('BillCustomer', SearchAttributeType.KEYWORD);
export const BillPeriodEndKey = defineSearchAttributeKey('BillPeriodEnd', SearchAttributeType.DATETIME);
export const BillSeriesIdKey = defineSearchAttributeKey('BillSeriesId', SearchAttributeType.KEYWORD);
export const BillCurrenciesKey = defineSearchAttributeKey('BillCurrencies', SearchAttributeType.KEYWORD_LIST);

export const BILL_SEARCH_ATTRIBUTES = [BillStatusKey, BillPolicyKey, BillCustomerKey, BillPeriodEndKey, BillSeriesIdKey, BillCurrenciesKey];

/**
 * A bill's attributes as it starts (or as a bill of the previous release gets them later): open,
 * its currency if it is restricted to one. Absent values (no customer, no series) are left out.
 */
export function billSearchAttributes(
  bill: BillHeader,
  status: BillStatus = 'open',
  currencies: string[] = [],
  customerPrivate = false,
): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [
    { key: BillStatusKey, value: status },
    { key: BillPolicyKey, value: bill.policy },
    { key: BillPeriodEndKey, value: new Date(bill.billing_period_end) },
    { key: BillCurrenciesKey, value: bill.currency ? [bill.currency] : [...currencies].sort() },
  ];
  if (bill.customer_email && !customerPrivate) pairs.push({ key: BillCustomerKey, value: bill.customer_email });
  if (bill.series_id) pairs.push({ key: BillSeriesIdKey, value: bill.series_id });
  return pairs;
}

/** Temporal renders summaries as markdown: the caller's text shows as written, never as markup. */
const literal = (text: string) => text.replace(/[\\`*_{}[\]()<>#+!|~]/g, '\\$&');

/** The row of the bill's workflow in the UI and `temporal workflow describe`. */
export function billSummary(bill: BillHeader): string {
  const period = `${bill.billing_period_start.slice(0, 10)} to ${bill.billing_period_end.slice(0, 10)}`;
  const what = bill.interval ? `recurring bill (${bill.interval})` : 'bill';
  return `${what} ${literal(bill.bill_id)} for ${bill.customer_email ? literal(bill.customer_email) : 'no customer email'}, ${period}`;
}
