/**
 * The rules of a bill's creation that its request's shape cannot say (bills/requests.ts declares
 * the shape): a period end in the future and within 5 years, the cadence of a recurring bill,
 * spans within bounds, currencies that exist. Pure: no framework, no I/O.
 */
import { addYears, isValid, parseISO } from 'date-fns';
import { checkStorable, checkSupportedCurrency, fieldError } from '../core/validate';
import { addInterval, isBoundary, parseInterval, parseSpan, periodEnd, type Interval } from './periods';
import { pricesOf, usageAlertsOf, type PriceInput } from '../usage/price-rules';
import type { Price } from '../usage/rating';
import type { UsageAlert } from '../usage/types';
import type { BillingPolicy, RecurringFee } from './types';

/** A period longer than this is almost certainly a client bug (a year typo, ms vs s). */
export const MAX_PERIOD_YEARS = 5;

export interface CreateBillInput {
  bill_id: string | null;
  /** Given, or for a recurring bill computed from its interval: the end of the first period. */
  billing_period_end: string;
  /**
   * The end as the client sent it (null when computed): what a retry of the same request repeats,
   * so it, not the computed end, is what identifies the request.
   */
  requested_period_end: string | null;
  currency: string | null;
  policy: BillingPolicy;
  customer_email: string | null;
  customer_id: string | null;
  tax_rates: string[] | null;
  prices: Price[] | null;
  usage_alerts: UsageAlert[] | null;
  description: string | null;
  interval: string | null;
  billing_anchor_day: number | null;
  recurring_fee: RecurringFee | null;
  /** Null when not given (the defaults apply): a request that did not name them is the same request as before they existed. */
  grace_period: string | null;
  payment_terms: string | null;
}

export const MAX_GRACE_PERIOD_MS = 30 * 86_400_000;
export const MAX_PAYMENT_TERMS_MS = 365 * 86_400_000;

/** A create request as its shape was checked: any field may be absent, and null is the same. */
export type BillRequest = { [K in keyof Omit<CreateBillInput, 'requested_period_end' | 'prices'>]?: CreateBillInput[K] | null } & {
  prices?: PriceInput[] | null;
};

/** An optional span of time within [min, max] milliseconds, kept as the client wrote it. */
function spanField(value: string | null | undefined, field: string, minMs: number, maxMs: number, maxText: string): string | null {
  if (value === undefined || value === null) return null;
  const ms = parseSpan(value);
  if (typeof ms !== 'number') throw fieldError(field, ms.error);
  if (ms < minMs) throw fieldError(field, 'must be at least one second');
  if (ms > maxMs) throw fieldError(field, `must be at most ${maxText}`);
  return value;
}

export function createBillInput(request: BillRequest, now: Date): CreateBillInput {
  const policy = request.policy ?? 'usage_based';
  const currency = request.currency == null ? null : checkSupportedCurrency(request.currency);
  checkStorable({ customer_email: request.customer_email, description: request.description });
  const common = {
    bill_id: request.bill_id ?? null,
    currency,
    policy,
    customer_email: request.customer_email ?? null,
    customer_id: request.customer_id ?? null,
    tax_rates: request.tax_rates ?? null,
    prices: pricesOf(request.prices, currency),
    usage_alerts: usageAlertsOf(request.usage_alerts),
    description: request.description ?? null,
    grace_period: spanField(request.grace_period, 'grace_period', 0, MAX_GRACE_PERIOD_MS, 'P30D'),
    payment_terms: spanField(request.payment_terms, 'payment_terms', 1000, MAX_PAYMENT_TERMS_MS, 'P365D'),
  };
  if (policy === 'usage_based') {
    for (const field of ['interval', 'billing_anchor_day', 'recurring_fee'] as const) {
      if (request[field] != null) throw fieldError(field, 'is only for recurring bills (policy recurring or monthly)');
    }
    const end = parsePeriodEnd(request.billing_period_end, now);
    if (end === null) throw fieldError('billing_period_end', 'is required');
    return {
      ...common,
      billing_period_end: end.toISOString(),
      requested_period_end: end.toISOString(),
      interval: null,
      billing_anchor_day: null,
      recurring_fee: null,
    };
  }
  const cadence = cadenceOf(request, policy, currency, now);
  // A draft ends before the next period's does: at most one draft of a series at a time.
  const interval = parseInterval(cadence.interval) as Interval;
  const shortest = interval.kind === 'fixed' ? interval.ms : interval.months * 28 * 86_400_000;
  if (common.grace_period !== null && (parseSpan(common.grace_period) as number) >= shortest) {
    throw fieldError('grace_period', `must be shorter than the interval (${cadence.interval})`);
  }
  return { ...common, ...cadence };
}

/** A recurring bill's interval, anchor, fee and first period end. */
function cadenceOf(request: BillRequest, policy: BillingPolicy, currency: string | null, now: Date) {
  let text = request.interval;
  if (policy === 'monthly') {
    if (text != null && text !== 'P1M') throw fieldError('interval', 'must be P1M (or absent) for a monthly bill');
    text = 'P1M';
  }
  if (text == null) throw fieldError('interval', 'is required for a recurring bill (an ISO 8601 duration such as P1M)');
  const interval = parseInterval(text);
  if ('error' in interval) throw fieldError('interval', interval.error);
  const given = parsePeriodEnd(request.billing_period_end, now);
  let anchor: number | null = null;
  if (interval.kind === 'calendar') {
    anchor = request.billing_anchor_day ?? (given ? given.getUTCDate() : 1);
    if (given && !isBoundary(given, anchor)) {
      throw fieldError(
        'billing_period_end',
        `must be 00:00:00 UTC on day ${anchor} of a month (or that month's last day), where periods of ${text} end`,
      );
    }
  } else if (request.billing_anchor_day != null) {
    throw fieldError('billing_anchor_day', 'is only for intervals of months or years');
  }
  // A period longer than this is almost certainly a client bug, as for usage-based bills.
  const oneInterval = addInterval(now, interval);
  if (Number.isNaN(oneInterval.getTime()) || oneInterval.getTime() > addYears(now, MAX_PERIOD_YEARS).getTime()) {
    throw fieldError('interval', `must be at most ${MAX_PERIOD_YEARS} years`);
  }
  // A given end closes the first, possibly partial, period: at most one interval away.
  if (given && given.getTime() > addInterval(now, interval).getTime()) {
    throw fieldError('billing_period_end', `must end the first period: at most ${text} away`);
  }
  const end = given ?? periodEnd(now, interval, anchor ?? 1);
  return {
    billing_period_end: end.toISOString(),
    requested_period_end: given ? given.toISOString() : null,
    interval: text,
    billing_anchor_day: anchor,
    recurring_fee: recurringFee(request.recurring_fee, currency),
  };
}

function recurringFee(fee: RecurringFee | null | undefined, billCurrency: string | null): RecurringFee | null {
  if (fee == null) return null;
  checkSupportedCurrency(fee.currency, 'recurring_fee.currency');
  if (billCurrency !== null && fee.currency !== billCurrency) {
    throw fieldError('recurring_fee.currency', `must be the bill's currency, ${billCurrency}`);
  }
  checkStorable({ recurring_fee: { description: fee.description } });
  return { amount: fee.amount, currency: fee.currency, description: fee.description };
}

/** The end of a period as requested: an RFC 3339 timestamp (its form checked) that is a real instant, in the future, within 5 years. */
function parsePeriodEnd(value: string | null | undefined, now: Date): Date | null {
  if (value == null) return null;
  const end = parseISO(value);
  if (!isValid(end)) throw fieldError('billing_period_end', 'is not a real date and time');
  if (end.getTime() <= now.getTime()) throw fieldError('billing_period_end', 'must be in the future');
  if (end.getTime() > addYears(now, MAX_PERIOD_YEARS).getTime()) {
    throw fieldError('billing_period_end', `must be within ${MAX_PERIOD_YEARS} years`);
  }
  return end;
}
