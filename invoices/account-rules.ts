/**
 * The rules of an invoice's account, pure (no framework, no I/O): what a payment or a credit note
 * may be, and which status the amounts and dates give. The transactions in account-changes.ts
 * apply them under the account's row lock; the API parses requests with the same parsers.
 */
import { failedPrecondition } from '../core/errors';
import { isValidAmount } from '../core/money';
import { asBody, fieldError, optionalString, parseCurrency, requiredString } from '../core/validate';
import type { CreditNoteLine, InvoiceAmounts, PaymentStatus } from './types';

export const MAX_REFERENCE_CHARS = 200;
export const MAX_REASON_CHARS = 500;
export const MAX_CREDIT_NOTE_LINES = 100;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

export interface PaymentInput {
  amount: number;
  currency: string;
  paid_at: string;
  reference: string | null;
}

/** A payment as the client sent it; `paid_at` defaults to `now` and may not be after it. */
export function parseRecordPayment(input: unknown, now: Date): PaymentInput {
  const body = asBody(input);
  const known = new Set(['amount', 'currency', 'paid_at', 'reference']);
  for (const key of Object.keys(body)) if (!known.has(key)) throw fieldError(key, 'is not a field of a payment');
  if (body.amount === undefined || body.amount === null) throw fieldError('amount', 'is required');
  if (!isValidAmount(body.amount))
    throw fieldError('amount', 'must be a positive integer number of minor units within the safe integer range');
  const currency = parseCurrency(body.currency);
  let paidAt = now.toISOString();
  if (body.paid_at !== undefined && body.paid_at !== null) {
    const t = typeof body.paid_at === 'string' && RFC3339.test(body.paid_at) ? new Date(body.paid_at) : null;
    if (!t || Number.isNaN(t.getTime())) throw fieldError('paid_at', 'must be an RFC 3339 timestamp with a time zone');
    if (t.getTime() > now.getTime() + 60_000) throw fieldError('paid_at', 'must not be in the future');
    paidAt = t.toISOString();
  }
  return { amount: body.amount, currency, paid_at: paidAt, reference: optionalString(body, 'reference', MAX_REFERENCE_CHARS) };
}

export type CreditNoteInput = { full: true; reason: string | null } | { full: false; lines: CreditNoteLine[]; reason: string | null };

/** `lines` (each an amount, currency and reason) or `full: true`, not both. */
export function parseIssueCreditNote(input: unknown): CreditNoteInput {
  const body = asBody(input);
  const known = new Set(['lines', 'full', 'reason']);
  for (const key of Object.keys(body)) if (!known.has(key)) throw fieldError(key, 'is not a field of a credit note');
  const reason = optionalString(body, 'reason', MAX_REASON_CHARS);
  if (body.full !== undefined && body.full !== null && typeof body.full !== 'boolean') throw fieldError('full', 'must be true or false');
  const hasLines = body.lines !== undefined && body.lines !== null;
  if (body.full === true) {
    if (hasLines) throw fieldError('lines', 'must be absent with full: true');
    return { full: true, reason };
  }
  if (!hasLines) throw fieldError('lines', 'are required (or full: true)');
  if (!Array.isArray(body.lines) || body.lines.length === 0 || body.lines.length > MAX_CREDIT_NOTE_LINES) {
    throw fieldError('lines', `must be a list of 1 to ${MAX_CREDIT_NOTE_LINES} lines`);
  }
  const lines = body.lines.map((raw: unknown, i: number) => {
    const line = asBody(raw);
    const at = (field: string) => `lines[${i}].${field}`;
    for (const key of Object.keys(line))
      if (!['amount', 'currency', 'reason'].includes(key)) throw fieldError(at(key), 'is not a field of a line');
    if (!isValidAmount(line.amount)) throw fieldError(at('amount'), 'must be a positive integer number of minor units');
    const currency = parseCurrency(line.currency, at('currency'));
    let text: string;
    try {
      text = requiredString(line, 'reason', MAX_REASON_CHARS);
    } catch {
      throw fieldError(at('reason'), `is required: 1 to ${MAX_REASON_CHARS} characters`);
    }
    return { amount: line.amount, currency, reason: text };
  });
  return { full: false, lines, reason };
}

export function parseInvoiceAction(input: unknown): { reason: string | null } {
  const body = asBody(input);
  for (const key of Object.keys(body)) if (key !== 'reason') throw fieldError(key, 'is not a field of this request');
  return { reason: optionalString(body, 'reason', MAX_REASON_CHARS) };
}

/** Statuses in which nothing more is owed or accepted: the lifecycle ends (a later request restarts it). */
export const SETTLED: readonly PaymentStatus[] = ['paid', 'void', 'uncollectible'];

export interface AccountFacts {
  due_at: string;
  overdue_at: string | null;
  uncollectible_at: string | null;
  voided_at: string | null;
  amounts: InvoiceAmounts[];
}

/**
 * The status the facts give: void once voided; paid when nothing is due (paid, or credited in
 * full); then uncollectible, overdue (once marked so at due_at), partially paid, open.
 */
export function statusOf(a: AccountFacts): PaymentStatus {
  if (a.voided_at) return 'void';
  if (a.amounts.every((x) => x.due === 0)) return 'paid';
  if (a.uncollectible_at) return 'uncollectible';
  if (a.overdue_at) return 'overdue';
  if (a.amounts.some((x) => x.paid > 0)) return 'partially_paid';
  return 'open';
}

const due = (amounts: InvoiceAmounts[], currency: string) => amounts.find((a) => a.currency === currency)?.due;

/** A payment fits: the invoice takes payments and the amount is at most what is due in its currency. */
export function checkPayment(status: PaymentStatus, amounts: InvoiceAmounts[], p: { amount: number; currency: string }): void {
  if (status === 'void') throw failedPrecondition('the invoice is void: it takes no payments', { status });
  const owed = due(amounts, p.currency);
  if (owed === undefined) {
    throw failedPrecondition(`the invoice has no ${p.currency} amount`, { field: 'currency', currencies: amounts.map((a) => a.currency) });
  }
  if (p.amount > owed) {
    throw failedPrecondition(`overpayment: ${p.amount} exceeds the ${owed} still due in ${p.currency}`, {
      field: 'amount',
      currency: p.currency,
      due: owed,
    });
  }
}

/**
 * The lines of a credit note: those asked for, each currency's sum at most what is still
 * creditable (due); or, for `full`, everything due. Refused when nothing would be credited.
 */
export function creditLines(
  status: PaymentStatus,
  amounts: InvoiceAmounts[],
  input: CreditNoteInput,
  fullReason: string,
): CreditNoteLine[] {
  if (status === 'void') throw failedPrecondition('the invoice is void: nothing is left to credit', { status });
  if (input.full) {
    const lines = amounts
      .filter((a) => a.due > 0)
      .map((a) => ({ currency: a.currency, amount: a.due, reason: input.reason ?? fullReason }));
    if (lines.length === 0) throw failedPrecondition('nothing is due on the invoice: nothing is left to credit', { status });
    return lines;
  }
  const sums = new Map<string, number>();
  for (const line of input.lines) sums.set(line.currency, (sums.get(line.currency) ?? 0) + line.amount);
  for (const [currency, sum] of sums) {
    const owed = due(amounts, currency);
    if (owed === undefined) {
      throw failedPrecondition(`the invoice has no ${currency} amount`, { field: 'lines', currencies: amounts.map((a) => a.currency) });
    }
    if (!Number.isSafeInteger(sum) || sum > owed) {
      throw failedPrecondition(`the credit of ${sum} ${currency} exceeds the ${owed} still creditable`, {
        field: 'lines',
        currency,
        creditable: owed,
      });
    }
  }
  return input.lines;
}
