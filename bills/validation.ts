/** Bill request rules. Pure: no framework, no I/O. */
import { addYears, isValid, parseISO } from 'date-fns';
import { parseCurrency } from '../lineitems/validation';
import { asBody, decodeCursor, fieldError, intParam, optionalString, parseId } from '../core/validate';
import { INVOICE_STATUSES, type InvoiceStatus } from '../postprocess/types';
import { BILLING_POLICIES, type BillingPolicy } from './types';

export const MAX_BILL_DESCRIPTION_CHARS = 500;
/** A period longer than this is almost certainly a client bug (a year typo, ms vs s). */
export const MAX_PERIOD_YEARS = 5;

export interface CreateBillInput {
  bill_id: string | null;
  billing_period_end: string;
  currency: string | null;
  policy: BillingPolicy;
  customer_email: string | null;
  description: string | null;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;
// Deliberately loose: one @, no spaces, a dot in the domain. Deliverability is the mail server's call.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function parseCreateBill(input: unknown, now: Date): CreateBillInput {
  const body = asBody(input);
  const billId = body.bill_id === undefined || body.bill_id === null ? null : parseId(body.bill_id, 'bill_id');
  return {
    bill_id: billId,
    billing_period_end: parsePeriodEnd(body.billing_period_end, now),
    currency: body.currency === undefined || body.currency === null ? null : parseCurrency(body.currency),
    policy: parsePolicy(body.policy),
    customer_email: parseEmail(optionalString(body, 'customer_email', 254)),
    description: optionalString(body, 'description', MAX_BILL_DESCRIPTION_CHARS),
  };
}

function parsePeriodEnd(value: unknown, now: Date): string {
  if (value === undefined || value === null) throw fieldError('billing_period_end', 'is required');
  if (typeof value !== 'string' || !RFC3339.test(value)) {
    throw fieldError('billing_period_end', 'must be an RFC 3339 timestamp with a time zone, e.g. 2030-01-31T00:00:00Z');
  }
  const end = parseISO(value);
  if (!isValid(end)) throw fieldError('billing_period_end', 'is not a real date and time');
  if (end.getTime() <= now.getTime()) throw fieldError('billing_period_end', 'must be in the future');
  if (end.getTime() > addYears(now, MAX_PERIOD_YEARS).getTime()) {
    throw fieldError('billing_period_end', `must be within ${MAX_PERIOD_YEARS} years`);
  }
  return end.toISOString();
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
  status: 'open' | 'closed' | null;
  /** Closed bills whose invoice is in this state (an operator looking for failed ones). */
  invoice_status: InvoiceStatus | null;
  limit: number;
  /** Keyset position: the last bill of the previous page. */
  after: { created_at: string; bill_id: string } | null;
}

export function parseListBills(
  query: { status?: unknown; invoice_status?: unknown; limit?: unknown; cursor?: unknown },
  maxLimit = 100,
): ListBillsInput {
  const status = query.status === undefined || query.status === '' ? null : query.status;
  if (status !== null && status !== 'open' && status !== 'closed') {
    throw fieldError('status', 'must be open or closed');
  }
  const invoiceStatus = query.invoice_status === undefined || query.invoice_status === '' ? null : query.invoice_status;
  if (invoiceStatus !== null && !INVOICE_STATUSES.includes(invoiceStatus as InvoiceStatus)) {
    throw fieldError('invoice_status', `must be one of ${INVOICE_STATUSES.join(', ')}`);
  }
  const cursor = decodeCursor(
    query.cursor,
    (p) => p.length === 2 && typeof p[0] === 'string' && isValid(parseISO(p[0])) && typeof p[1] === 'string',
  );
  return {
    status,
    invoice_status: invoiceStatus as InvoiceStatus | null,
    limit: intParam(query.limit, 'limit', Math.min(20, maxLimit), 1, maxLimit),
    after: cursor ? { created_at: cursor[0] as string, bill_id: cursor[1] as string } : null,
  };
}
