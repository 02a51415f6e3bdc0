/**
 * The rules of an invoice's account, pure (no framework, no I/O): what a payment or a credit note
 * may be beyond its request's shape (invoices/requests.ts declares that), and which status the
 * amounts and dates give. The use cases run them on requests, the lifecycle workflow's update
 * validators run the money rules again on what reaches it, and the transactions in
 * account-changes.ts apply the rest under the account's row lock.
 */
import { failedPrecondition } from '../core/errors';
import { isValidAmount } from '../core/money';
import { checkStorable, checkSupportedCurrency, fieldError, parseCurrency } from '../core/validate';
import type { CreditNoteLine, InvoiceAmounts, PaymentStatus } from './types';

export interface PaymentInput {
  amount: number;
  currency: string;
  paid_at: string;
  reference: string | null;
}

/** A payment request as its shape was checked: `paid_at` and `reference` may be absent or null. */
export type PaymentRequest = Pick<PaymentInput, 'amount' | 'currency'> & { paid_at?: string | null; reference?: string | null };

/** A payment in a currency that exists; `paid_at` (an RFC 3339 timestamp by its shape) a real instant, not after `now`, which it defaults to. */
export function paymentInput(request: PaymentRequest, now: Date): PaymentInput {
  const currency = checkSupportedCurrency(request.currency);
  const reference = request.reference ?? null;
  checkStorable({ reference });
  return {
    amount: request.amount,
    currency,
    paid_at: request.paid_at == null ? now.toISOString() : paidAt(request.paid_at, now),
    reference,
  };
}

function paidAt(value: string, now: Date): string {
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) throw fieldError('paid_at', 'must be an RFC 3339 timestamp with a time zone');
  if (t.getTime() > now.getTime() + 60_000) throw fieldError('paid_at', 'must not be in the future');
  return t.toISOString();
}

const AMOUNT_REASON = 'must be a positive integer number of minor units within the safe integer range';

/**
 * The money of a payment as the lifecycle workflow's validator checks it again, before anything
 * enters history: whatever reached it (Encore, for one, knows no integers).
 */
export function checkPaymentValues(payment: { amount: unknown; currency: unknown; paid_at: unknown }, now: Date): void {
  if (!isValidAmount(payment.amount)) throw fieldError('amount', AMOUNT_REASON);
  parseCurrency(payment.currency);
  if (typeof payment.paid_at !== 'string') throw fieldError('paid_at', 'must be an RFC 3339 timestamp with a time zone');
  paidAt(payment.paid_at, now);
}

export type CreditNoteInput = { full: true; reason: string | null } | { full: false; lines: CreditNoteLine[]; reason: string | null };

/** A credit note request as its shape was checked. */
export interface CreditNoteRequest {
  lines?: CreditNoteLine[] | null;
  full?: boolean | null;
  reason?: string | null;
}

/** `lines` (each in a currency that exists) or `full: true`, not both. */
export function creditNoteInput(request: CreditNoteRequest): CreditNoteInput {
  const reason = request.reason ?? null;
  if (request.full === true) {
    if (request.lines != null) throw fieldError('lines', 'must be absent with full: true');
    checkStorable({ reason });
    return { full: true, reason };
  }
  if (request.lines == null) throw fieldError('lines', 'are required (or full: true)');
  const lines = request.lines.map((line, i) => ({
    amount: line.amount,
    currency: checkSupportedCurrency(line.currency, `lines[${i}].currency`),
    reason: line.reason,
  }));
  checkStorable({ lines, reason });
  return { full: false, lines, reason };
}

/** The money of a credit note as the lifecycle workflow's validator checks it again (see checkPaymentValues). */
export function checkCreditNoteValues(note: CreditNoteInput): void {
  if (note.full) return;
  if (!Array.isArray(note.lines) || note.lines.length === 0) throw fieldError('lines', 'are required (or full: true)');
  note.lines.forEach((line, i) => {
    if (!isValidAmount(line.amount)) throw fieldError(`lines[${i}].amount`, AMOUNT_REASON);
    parseCurrency(line.currency, `lines[${i}].currency`);
  });
}

/** A void's reason as the lifecycle workflow's validator checks it again: none, or text Postgres can store. */
export function checkActionReason(reason: unknown): void {
  if (reason !== null && typeof reason !== 'string') throw fieldError('reason', 'must be a string');
  checkStorable({ reason });
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
