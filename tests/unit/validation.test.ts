import { randomUUID } from 'node:crypto';
import { v5 as uuidv5 } from 'uuid';
import { AppError } from '../../core/errors';
import { parseCreateBill, parseListBills } from '../../bills/validation';
import { lineItemId } from '../../bills/line-item-ids';
import {
  batchTotals,
  checkBatchFitsBill,
  checkLineItemFitsBill,
  checkStagedBatchFitsBill,
  parseNewLineItem,
} from '../../bills/line-item-rules';
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
      bill_id: null,
      billing_period_end: '2026-12-01T00:00:00.000Z',
      currency: null,
      policy: 'usage_based',
      customer_email: null,
      description: null,
      interval: null,
      billing_anchor_day: null,
      recurring_fee: null,
      requested_period_end: '2026-12-01T00:00:00.000Z',
      grace_period: null,
      payment_terms: null,
    });
  });

  it('takes a grace period up to P30D and payment terms of at least a second', () => {
    const end = '2027-01-01T00:00:00Z';
    const parsed = parseCreateBill({ billing_period_end: end, grace_period: 'P2DT12H', payment_terms: 'PT5S' }, now);
    expect([parsed.grace_period, parsed.payment_terms]).toEqual(['P2DT12H', 'PT5S']);
    expect(parseCreateBill({ billing_period_end: end, grace_period: 'PT0S' }, now).grace_period).toBe('PT0S');
    for (const [field, value] of [
      ['grace_period', 'P31D'],
      ['grace_period', 'P1M'],
      ['grace_period', '3 days'],
      ['grace_period', 5],
      ['payment_terms', 'PT0S'],
      ['payment_terms', 'P366D'],
    ] as const) {
      expect(() => parseCreateBill({ billing_period_end: end, [field]: value }, now)).toThrow(
        expect.objectContaining({ details: expect.objectContaining({ field }) }),
      );
    }
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
      amount: 1,
      currency: 'KWD',
      description: 'x',
      metadata: { a: 1 },
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

describe('staged batches', () => {
  const bill = { status: 'open', currency: null, totals: {}, pending: {} };
  const items = [
    { amount: 5, currency: 'USD', description: 'a', metadata: null },
    { amount: 7, currency: 'JPY', description: 'b', metadata: null },
    { amount: 11, currency: 'USD', description: 'c', metadata: null },
  ];
  const ref = { batch_id: 'b1', item_count: 3, totals: batchTotals(items) };

  it('sums per currency, and refuses a batch whose own sum leaves the exact range', () => {
    expect(ref.totals).toEqual({ USD: { amount: 16, count: 2 }, JPY: { amount: 7, count: 1 } });
    const huge = { amount: Number.MAX_SAFE_INTEGER - 1, currency: 'USD', description: 'x', metadata: null };
    expect(rejection(() => batchTotals([huge, huge])).code).toBe('failed_precondition');
  });

  it('checks every currency of the reference against the bill', () => {
    expect(() => checkStagedBatchFitsBill(ref, bill)).not.toThrow();
    expect(rejection(() => checkStagedBatchFitsBill(ref, { ...bill, currency: 'USD' })).code).toBe('failed_precondition');
    expect(rejection(() => checkStagedBatchFitsBill(ref, { ...bill, status: 'closing' })).code).toBe('failed_precondition');
    const nearlyFull = { JPY: { amount: Number.MAX_SAFE_INTEGER - 7, count: 1 } };
    expect(() => checkStagedBatchFitsBill(ref, { ...bill, totals: nearlyFull })).not.toThrow();
    expect(
      rejection(() => checkStagedBatchFitsBill(ref, { ...bill, totals: nearlyFull, pending: { JPY: { amount: 1, count: 1 } } })).code,
    ).toBe('failed_precondition');
  });

  it('checks a batch carried in the update (the previous release) the same way', () => {
    expect(() => checkBatchFitsBill(items, bill)).not.toThrow();
    expect(rejection(() => checkBatchFitsBill(items, { ...bill, currency: 'USD' })).code).toBe('failed_precondition');
    const nearlyFull = { USD: { amount: Number.MAX_SAFE_INTEGER - 16, count: 1 } };
    expect(() => checkBatchFitsBill(items, { ...bill, totals: nearlyFull })).not.toThrow();
    expect(
      rejection(() => checkBatchFitsBill(items, { ...bill, totals: nearlyFull, pending: { USD: { amount: 1, count: 1 } } })).code,
    ).toBe('failed_precondition');
  });

  it.each([
    { ...ref, item_count: 4 },
    { ...ref, item_count: 0, totals: {} },
    { ...ref, batch_id: 7 },
    { ...ref, totals: { ...ref.totals, USD: { amount: 0, count: 2 } } },
    { ...ref, totals: { USD: { amount: 16, count: 2 }, usd: { amount: 7, count: 1 } } },
    { ...ref, totals: { USD: { amount: 16, count: 2.5 }, JPY: { amount: 7, count: 0.5 } } },
  ])('refuses a malformed reference %j', (bad) => {
    expect(rejection(() => checkStagedBatchFitsBill(bad as never, bill)).code).toBe('invalid_argument');
  });
});

describe('parseListBills', () => {
  it('defaults and round-trips a cursor', () => {
    const cursor = encodeCursor(['2026-11-21T12:00:00.000Z', 'b-1']);
    expect(parseListBills({ cursor })).toEqual({
      status: null,
      invoice_status: null,
      payment_status: null,
      series_id: null,
      limit: 20,
      after: { created_at: '2026-11-21T12:00:00.000Z', bill_id: 'b-1' },
      live: false,
    });
    expect(parseListBills({ totals: 'live' }).live).toBe(true);
    // invoice_status names a delivery state or a payment state; draft is a status of its own.
    expect(parseListBills({ invoice_status: 'failed' })).toMatchObject({ invoice_status: 'failed', payment_status: null });
    expect(parseListBills({ invoice_status: 'overdue' })).toMatchObject({ invoice_status: null, payment_status: 'overdue' });
    expect(parseListBills({ status: 'draft' }).status).toBe('draft');
  });

  it.each([
    { limit: '1.5' },
    { limit: '-1' },
    { status: 'OPEN' },
    { invoice_status: 'lost' },
    { cursor: encodeCursor([1, 2]) },
    { totals: 'LIVE' },
  ])('refuses %j', (q) => {
    expect(rejection(() => parseListBills(q)).code).toBe('invalid_argument');
  });
});

describe('lineItemId', () => {
  // Retries find their rows by these ids, across releases: the derivation must never change.
  it.each([
    ['b-1', 'k-1', 'd64450c0-cffc-5235-be27-222fa031ed50'],
    ['b-1', 'key\n#7', '973cac7e-e4c2-5fdc-adcc-1df1cff2cbe7'],
    ['b-é', 'k€', '751dc3fc-8821-5e8c-a839-9ff474752247'],
  ])('derives (%j, %j) as it always has', (bill, key, id) => {
    expect(lineItemId(bill, key)).toBe(id);
  });

  it('is the uuid library\'s v5 of "bill\\nkey" in the line item namespace', () => {
    const namespace = '6f1b2c1e-4a57-4d1e-9a44-5b1f0c2e7d10';
    for (let i = 0; i < 200; i++) {
      const bill = randomUUID();
      const key = `${randomUUID()}\n#${i}${'é'.repeat(i % 3)}`;
      expect(lineItemId(bill, key)).toBe(uuidv5(`${bill}\n${key}`, namespace));
    }
  });
});
