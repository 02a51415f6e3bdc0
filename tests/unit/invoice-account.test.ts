import { type AppError } from '../../core/errors';
import {
  checkActionReason,
  checkCreditNoteValues,
  checkPayment,
  checkPaymentValues,
  creditLines,
  creditNoteInput,
  paymentInput,
  statusOf,
  type AccountFacts,
} from '../../invoices/account-rules';
import type { InvoiceAmounts } from '../../invoices/types';

const now = new Date('2026-12-01T10:00:00Z');
const amounts = (...rows: [string, number, number, number][]): InvoiceAmounts[] =>
  rows.map(([currency, total, credited, paid]) => ({ currency, net: total, tax: 0, total, credited, paid, due: total - credited - paid }));
const facts = (a: InvoiceAmounts[], more: Partial<AccountFacts> = {}): AccountFacts => ({
  due_at: '2026-12-31T00:00:00.000Z',
  overdue_at: null,
  uncollectible_at: null,
  voided_at: null,
  amounts: a,
  ...more,
});
const refused = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err as AppError;
  }
  throw new Error('not refused');
};

describe('statusOf', () => {
  it('follows the amounts and the dates', () => {
    expect(statusOf(facts(amounts(['EUR', 1000, 0, 0])))).toBe('open');
    expect(statusOf(facts(amounts(['EUR', 1000, 0, 400])))).toBe('partially_paid');
    expect(statusOf(facts(amounts(['EUR', 1000, 300, 700])))).toBe('paid');
    // Each currency settles on its own: paid only when nothing is due in any.
    expect(statusOf(facts(amounts(['EUR', 1000, 0, 1000], ['USD', 50, 0, 0])))).toBe('partially_paid');
    expect(statusOf(facts(amounts(['EUR', 1000, 0, 400]), { overdue_at: '2026-12-31T00:00:00Z' }))).toBe('overdue');
    expect(statusOf(facts(amounts(['EUR', 1000, 0, 0]), { uncollectible_at: '2026-12-31T00:00:00Z', overdue_at: 'x' }))).toBe(
      'uncollectible',
    );
    expect(statusOf(facts(amounts(['EUR', 1000, 1000, 0]), { voided_at: '2026-12-31T00:00:00Z' }))).toBe('void');
    // Nothing billed: nothing is due.
    expect(statusOf(facts([]))).toBe('paid');
  });
});

describe('payments', () => {
  it('refuses overpayment, a currency the invoice lacks, and a void invoice', () => {
    const a = amounts(['EUR', 1000, 200, 300]);
    expect(() => checkPayment('partially_paid', a, { amount: 500, currency: 'EUR' })).not.toThrow();
    expect(refused(() => checkPayment('partially_paid', a, { amount: 501, currency: 'EUR' })).details).toMatchObject({ due: 500 });
    expect(refused(() => checkPayment('open', a, { amount: 1, currency: 'USD' })).code).toBe('failed_precondition');
    expect(refused(() => checkPayment('void', a, { amount: 1, currency: 'EUR' })).message).toMatch(/void/);
  });

  it('takes a payment: paid_at defaults to now, is kept in UTC, and may not be in the future', () => {
    expect(paymentInput({ amount: 100, currency: 'EUR' }, now)).toEqual({
      amount: 100,
      currency: 'EUR',
      paid_at: now.toISOString(),
      reference: null,
    });
    expect(paymentInput({ amount: 1, currency: 'EUR', paid_at: '2026-12-01T12:00:00+04:00', reference: 'r' }, now)).toMatchObject({
      paid_at: '2026-12-01T08:00:00.000Z',
      reference: 'r',
    });
    for (const [body, field] of [
      [{ amount: 1, currency: 'XYZ' }, 'currency'],
      [{ amount: 1, currency: 'EUR', paid_at: '2030-01-01T00:00:00Z' }, 'paid_at'],
      [{ amount: 1, currency: 'EUR', paid_at: '2026-13-01T00:00:00Z' }, 'paid_at'],
      [{ amount: 1, currency: 'EUR', reference: 'a\u0000' }, 'reference'],
    ] as const) {
      expect(refused(() => paymentInput(body, now)).details).toMatchObject({ field });
    }
  });

  it("checks a payment's money again in the workflow's validator, whatever reached it", () => {
    expect(() => checkPaymentValues({ amount: 100, currency: 'EUR', paid_at: now.toISOString() }, now)).not.toThrow();
    for (const [payment, field] of [
      [{ amount: 0, currency: 'EUR', paid_at: now.toISOString() }, 'amount'],
      [{ amount: 1.5, currency: 'EUR', paid_at: now.toISOString() }, 'amount'],
      [{ amount: 1, currency: 'eur', paid_at: now.toISOString() }, 'currency'],
      [{ amount: 1, currency: 'EUR', paid_at: '2030-01-01T00:00:00Z' }, 'paid_at'],
      [{ amount: 1, currency: 'EUR', paid_at: 5 }, 'paid_at'],
    ] as const) {
      expect(refused(() => checkPaymentValues(payment, now)).details).toMatchObject({ field });
    }
  });
});

describe('credit notes', () => {
  const a = amounts(['EUR', 1000, 0, 300], ['USD', 500, 100, 0]);

  it('credits at most what is still due, per currency, summed over the lines', () => {
    const lines = [
      { amount: 400, currency: 'EUR', reason: 'a' },
      { amount: 300, currency: 'EUR', reason: 'b' },
    ];
    expect(creditLines('partially_paid', a, { full: false, lines, reason: null }, 'x')).toEqual(lines);
    const over = [...lines, { amount: 1, currency: 'EUR', reason: 'c' }];
    expect(refused(() => creditLines('partially_paid', a, { full: false, lines: over, reason: null }, 'x')).details).toMatchObject({
      creditable: 700,
    });
  });

  it('credits everything due for full, and refuses when nothing is left', () => {
    expect(creditLines('open', a, { full: true, reason: null }, 'In full')).toEqual([
      { currency: 'EUR', amount: 700, reason: 'In full' },
      { currency: 'USD', amount: 400, reason: 'In full' },
    ]);
    expect(refused(() => creditLines('paid', amounts(['EUR', 1000, 0, 1000]), { full: true, reason: null }, 'x')).code).toBe(
      'failed_precondition',
    );
  });

  it('takes lines or full, not both', () => {
    expect(creditNoteInput({ full: true })).toEqual({ full: true, reason: null });
    expect(creditNoteInput({ lines: [{ amount: 5, currency: 'EUR', reason: 'r' }], full: null })).toEqual({
      full: false,
      lines: [{ amount: 5, currency: 'EUR', reason: 'r' }],
      reason: null,
    });
    expect(refused(() => creditNoteInput({ full: true, lines: [{ amount: 5, currency: 'EUR', reason: 'r' }] })).details).toMatchObject({
      field: 'lines',
    });
    expect(refused(() => creditNoteInput({})).details).toMatchObject({ field: 'lines' });
    expect(refused(() => creditNoteInput({ full: false })).details).toMatchObject({ field: 'lines' });
    expect(refused(() => creditNoteInput({ lines: [{ amount: 5, currency: 'XYZ', reason: 'r' }] })).details).toMatchObject({
      field: 'lines[0].currency',
    });
  });

  it("checks a credit note's money and a void's reason again in the workflow's validators", () => {
    expect(() => checkCreditNoteValues({ full: true, reason: null })).not.toThrow();
    expect(refused(() => checkCreditNoteValues({ full: false, lines: [], reason: null })).details).toMatchObject({ field: 'lines' });
    expect(
      refused(() => checkCreditNoteValues({ full: false, lines: [{ amount: 0.5, currency: 'EUR', reason: 'r' }], reason: null })).details,
    ).toMatchObject({ field: 'lines[0].amount' });
    expect(() => checkActionReason(null)).not.toThrow();
    expect(refused(() => checkActionReason('\ud800')).details).toMatchObject({ field: 'reason' });
    expect(refused(() => checkActionReason(5)).details).toMatchObject({ field: 'reason' });
  });
});
