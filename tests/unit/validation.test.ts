import { AppError } from '../../core/errors';
import { parseCreateBill, parseListBills } from '../../bills/validation';
import { checkLineItemFitsBill, parseNewLineItem } from '../../lineitems/validation';
import { encodeCursor } from '../../core/validate';

const now = new Date('2026-11-21T12:00:00Z');

function rejection(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('parseCreateBill', () => {
  it('normalises the period end to UTC and fills defaults', () => {
    expect(parseCreateBill({ billing_period_end: '2026-12-01T04:00:00+04:00' }, now)).toEqual({
      bill_id: null, billing_period_end: '2026-12-01T00:00:00.000Z', currency: null, policy: 'usage_based',
      customer_email: null, description: null, interval: null, billing_anchor_day: null, recurring_fee: null,
      requested_period_end: '2026-12-01T00:00:00.000Z',
    });
  });

  it('treats null like an absent optional field', () => {
    expect(parseCreateBill({ billing_period_end: '2027-01-01T00:00:00Z', currency: null, bill_id: null }, now).currency).toBeNull();
  });

  it.each([
    [{ billing_period_end: '2026-11-21T12:00:00Z' }, 'billing_period_end'],
    [{ billing_period_end: '2032-11-22T00:00:00Z' }, 'billing_period_end'],
    [{ billing_period_end: '2026-12-01' }, 'billing_period_end'],
    [{ billing_period_end: '2027-01-01T00:00:00Z', bill_id: '' }, 'bill_id'],
    [{ billing_period_end: '2027-01-01T00:00:00Z', bill_id: 'a/b' }, 'bill_id'],
    [{ billing_period_end: '2027-01-01T00:00:00Z', currency: 'US' }, 'currency'],
    [{ billing_period_end: '2027-01-01T00:00:00Z', customer_email: 'a@b' }, 'customer_email'],
    [{ billing_period_end: '2027-01-01T00:00:00Z', description: 5 }, 'description'],
  ])('refuses %j naming %s', (body, field) => {
    const err = rejection(() => parseCreateBill(body, now));
    expect(err.code).toBe('invalid_argument');
    expect(err.details).toMatchObject({ field });
  });

  it('accepts every id character the API promises', () => {
    expect(parseCreateBill({ bill_id: 'Ab_9.:-z', billing_period_end: '2027-01-01T00:00:00Z' }, now).bill_id).toBe('Ab_9.:-z');
  });
});

describe('parseNewLineItem', () => {
  it('accepts a valid item and keeps metadata', () => {
    expect(parseNewLineItem({ amount: 1, currency: 'KWD', description: 'x', metadata: { a: 1 } })).toEqual({
      amount: 1, currency: 'KWD', description: 'x', metadata: { a: 1 },
    });
  });

  it('counts description length in characters, not bytes', () => {
    expect(parseNewLineItem({ amount: 1, currency: 'USD', description: '€'.repeat(500) }).description).toHaveLength(500);
    expect(rejection(() => parseNewLineItem({ amount: 1, currency: 'USD', description: '€'.repeat(501) })).code).toBe('invalid_argument');
  });
});

describe('checkLineItemFitsBill', () => {
  const item = { amount: 10, currency: 'USD', description: 'x', metadata: null };
  const bill = { status: 'open', currency: null, totals: {}, pending: {} };

  it('refuses items on a bill that is not open', () => {
    expect(rejection(() => checkLineItemFitsBill(item, { ...bill, status: 'closing' })).code).toBe('failed_precondition');
  });

  it('refuses another currency on a single-currency bill', () => {
    expect(rejection(() => checkLineItemFitsBill(item, { ...bill, currency: 'GEL' })).code).toBe('failed_precondition');
  });

  it('counts in-flight amounts against the exact range', () => {
    const nearlyFull = { USD: { amount: Number.MAX_SAFE_INTEGER - 15, count: 1 } };
    expect(() => checkLineItemFitsBill(item, { ...bill, totals: nearlyFull })).not.toThrow();
    const withPending = { ...bill, totals: nearlyFull, pending: { USD: { amount: 10, count: 1 } } };
    expect(rejection(() => checkLineItemFitsBill(item, withPending)).code).toBe('failed_precondition');
  });
});

describe('parseListBills', () => {
  it('defaults and round-trips a cursor', () => {
    const cursor = encodeCursor(['2026-11-21T12:00:00.000Z', 'b-1']);
    expect(parseListBills({ cursor })).toEqual({ status: null, invoice_status: null, series_id: null, limit: 20, after: { created_at: '2026-11-21T12:00:00.000Z', bill_id: 'b-1' } });
  });

  it.each([{ limit: '1.5' }, { limit: '-1' }, { status: 'OPEN' }, { invoice_status: 'lost' }, { cursor: encodeCursor([1, 2]) }])('refuses %j', (q) => {
    expect(rejection(() => parseListBills(q)).code).toBe('invalid_argument');
  });
});
