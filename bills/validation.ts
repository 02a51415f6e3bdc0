/** Bill request rules. Pure: no framework, no I/O. */
import { addYears, isValid, parseISO } from 'date-fns';
import type { AppError } from '../core/errors';
import { parseNewLineItem } from './line-item-rules';
import { asBody, decodeCursor, fieldError, intParam, isId, isIsoInstant, optionalString, parseCurrency, parseId } from '../core/validate';
import { INVOICE_STATUSES, PAYMENT_STATUSES, type InvoiceStatus, type PaymentStatus } from '../invoices/types';
import { addInterval, isBoundary, parseInterval, parseSpan, periodEnd, type Interval } from './periods';
import { BILLING_POLICIES, type BillingPolicy, type RecurringFee } from './types';

export const MAX_BILL_DESCRIPTION_CHARS = 500;
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

/** An optional span of time within [min, max] milliseconds, kept as the client wrote it. */
function parseSpanField(value: unknown, field: string, minMs: number, maxMs: number, maxText: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw fieldError(field, 'must be an ISO 8601 duration such as P30D');
  const ms = parseSpan(value);
  if (typeof ms !== 'number') throw fieldError(field, ms.error);
  if (ms < minMs) throw fieldError(field, 'must be at least one second');
  if (ms > maxMs) throw fieldError(field, `must be at most ${maxText}`);
  return value;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;
// Deliberately loose: one @, no spaces, a dot in the domain. Deliverability is the mail server's call.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function parseCreateBill(input: unknown, now: Date): CreateBillInput {
  const body = asBody(input);
  const billId = body.bill_id === undefined || body.bill_id === null ? null : parseId(body.bill_id, 'bill_id');
  const policy = parsePolicy(body.policy);
  const currency = body.currency === undefined || body.currency === null ? null : parseCurrency(body.currency);
  const common = {
    bill_id: billId,
    currency,
    policy,
    customer_email: parseEmail(optionalString(body, 'customer_email', 254)),
    description: optionalString(body, 'description', MAX_BILL_DESCRIPTION_CHARS),
    grace_period: parseSpanField(body.grace_period, 'grace_period', 0, MAX_GRACE_PERIOD_MS, 'P30D'),
    payment_terms: parseSpanField(body.payment_terms, 'payment_terms', 1000, MAX_PAYMENT_TERMS_MS, 'P365D'),
  };
  if (policy === 'usage_based') {
    for (const field of ['interval', 'billing_anchor_day', 'recurring_fee']) {
      if (body[field] !== undefined && body[field] !== null)
        throw fieldError(field, 'is only for recurring bills (policy recurring or monthly)');
    }
    const end = parsePeriodEnd(body.billing_period_end, now);
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
  const cadence = parseCadence(body, policy, currency, now);
  // A draft ends before the next period's does: at most one draft of a series at a time.
  const interval = parseInterval(cadence.interval) as Interval;
  const shortest = interval.kind === 'fixed' ? interval.ms : interval.months * 28 * 86_400_000;
  if (common.grace_period !== null && (parseSpan(common.grace_period) as number) >= shortest) {
    throw fieldError('grace_period', `must be shorter than the interval (${cadence.interval})`);
  }
  return { ...common, ...cadence };
}

/** A recurring bill's interval, anchor, fee and first period end. */
function parseCadence(body: Record<string, unknown>, policy: BillingPolicy, currency: string | null, now: Date) {
  let text = body.interval;
  if (policy === 'monthly') {
    if (text !== undefined && text !== null && text !== 'P1M') throw fieldError('interval', 'must be P1M (or absent) for a monthly bill');
    text = 'P1M';
  }
  if (typeof text !== 'string') throw fieldError('interval', 'is required for a recurring bill (an ISO 8601 duration such as P1M)');
  const interval = parseInterval(text);
  if ('error' in interval) throw fieldError('interval', interval.error);
  const given = parsePeriodEnd(body.billing_period_end, now);
  let anchor: number | null = null;
  if (interval.kind === 'calendar') {
    anchor =
      body.billing_anchor_day === undefined || body.billing_anchor_day === null
        ? given
          ? given.getUTCDate()
          : 1
        : intParam(body.billing_anchor_day, 'billing_anchor_day', 1, 1, 31);
    if (given && !isBoundary(given, anchor)) {
      throw fieldError(
        'billing_period_end',
        `must be 00:00:00 UTC on day ${anchor} of a month (or that month's last day), where periods of ${text} end`,
      );
    }
  } else if (body.billing_anchor_day !== undefined && body.billing_anchor_day !== null) {
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
    recurring_fee: parseRecurringFee(body.recurring_fee, currency),
  };
}

function parseRecurringFee(value: unknown, billCurrency: string | null): RecurringFee | null {
  if (value === undefined || value === null) return null;
  try {
    const { amount, currency, description } = parseNewLineItem(value);
    if (billCurrency !== null && currency !== billCurrency) throw fieldError('currency', `must be the bill's currency, ${billCurrency}`);
    return { amount, currency, description };
  } catch (err) {
    const e = err as AppError;
    throw fieldError(`recurring_fee.${(e.details?.field as string | undefined) ?? 'body'}`, String(e.details?.reason ?? e.message));
  }
}

function parsePeriodEnd(value: unknown, now: Date): Date | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !RFC3339.test(value)) {
    throw fieldError('billing_period_end', 'must be an RFC 3339 timestamp with a time zone, e.g. 2030-01-31T00:00:00Z');
  }
  const end = parseISO(value);
  if (!isValid(end)) throw fieldError('billing_period_end', 'is not a real date and time');
  if (end.getTime() <= now.getTime()) throw fieldError('billing_period_end', 'must be in the future');
  if (end.getTime() > addYears(now, MAX_PERIOD_YEARS).getTime()) {
    throw fieldError('billing_period_end', `must be within ${MAX_PERIOD_YEARS} years`);
  }
  return end;
}

function parsePolicy(value: unknown): BillingPolicy {
  if (value === undefined || value === null) return 'usage_based';
  if (typeof value !== 'string' || !BILLING_POLICIES.includes(value as BillingPolicy)) {
    throw fieldError('policy', `must be one of: ${BILLING_POLICIES.join(', ')}`);
  }
  return value as BillingPolicy;
}

function parseEmail(value: string | null): string | null {
  if (value !== null && !EMAIL.test(value)) throw fieldError('customer_email', 'must be an email address');
  return value;
}

export interface ListBillsInput {
  status: 'open' | 'draft' | 'closed' | null;
  /** Closed bills whose invoice is in this delivery state (an operator looking for failed ones)... */
  invoice_status: InvoiceStatus | null;
  /** ...or in this payment state (overdue ones, say). */
  payment_status: PaymentStatus | null;
  /** The bills of one recurring series. */
  series_id: string | null;
  limit: number;
  /** Keyset position: the last bill of the previous page. */
  after: { created_at: string; bill_id: string } | null;
  /** Open bills' totals from their workflows instead of Postgres. */
  live: boolean;
}

export function parseListBills(
  query: { status?: unknown; invoice_status?: unknown; series_id?: unknown; limit?: unknown; cursor?: unknown; totals?: unknown },
  maxLimit = 100,
): ListBillsInput {
  if (query.totals !== undefined && query.totals !== '' && query.totals !== 'stored' && query.totals !== 'live') {
    throw fieldError('totals', 'must be stored or live');
  }
  const status = query.status === undefined || query.status === '' ? null : query.status;
  if (status !== null && status !== 'open' && status !== 'draft' && status !== 'closed') {
    throw fieldError('status', 'must be open, draft or closed');
  }
  const invoiceStatus = query.invoice_status === undefined || query.invoice_status === '' ? null : query.invoice_status;
  const isDelivery = INVOICE_STATUSES.includes(invoiceStatus as InvoiceStatus);
  const isPayment = PAYMENT_STATUSES.includes(invoiceStatus as PaymentStatus);
  if (invoiceStatus !== null && !isDelivery && !isPayment) {
    throw fieldError('invoice_status', `must be one of ${[...INVOICE_STATUSES, ...PAYMENT_STATUSES].join(', ')}`);
  }
  const cursor = decodeCursor(
    query.cursor,
    // What the listing wrote: its last bill's created_at and id, each as strict as a body field.
    (p) => p.length === 2 && isIsoInstant(p[0]) && isId(p[1]),
  );
  return {
    status: status as ListBillsInput['status'],
    invoice_status: isDelivery ? (invoiceStatus as InvoiceStatus) : null,
    payment_status: isPayment ? (invoiceStatus as PaymentStatus) : null,
    series_id: query.series_id === undefined || query.series_id === '' ? null : parseId(query.series_id, 'series_id'),
    limit: intParam(query.limit, 'limit', Math.min(20, maxLimit), 1, maxLimit),
    after: cursor ? { created_at: cursor[0] as string, bill_id: cursor[1] as string } : null,
    live: query.totals === 'live',
  };
}

export interface CancelBillInput {
  close_now: boolean;
}

/** `{ close_now?: boolean }`; an empty body cancels at the end of the current period. */
export function parseCancelBill(input: unknown): CancelBillInput {
  const body = asBody(input);
  if (body.close_now !== undefined && body.close_now !== null && typeof body.close_now !== 'boolean') {
    throw fieldError('close_now', 'must be true or false');
  }
  return { close_now: body.close_now === true };
}
