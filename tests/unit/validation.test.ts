/**
 * The domain rules a request meets once its shape is checked (request-validation.test.ts holds the
 * shapes, through the server): a bill's period and cadence, line items' currencies and metadata,
 * what may be stored, listings, and the line item rules the workflow runs again.
 */
import { randomUUID } from 'node:crypto';
import { v5 as uuidv5 } from 'uuid';
import { billsPageQuery } from '../../bills/bills';
import { AppError } from '../../core/errors';
import { createBillInput } from '../../bills/validation';
import { lineItemId } from '../../bills/line-item-ids';
import {
  batchTotals,
  checkBatchFitsBill,
  checkLineItemFitsBill,
  checkLineItemValues,
  checkStagedBatchFitsBill,
  newLineItem,
} from '../../bills/line-item-rules';
import { checkStorable, encodeCursor, pageSize } from '../../core/validate';

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

describe('createBillInput', () => {
  it('normalises the period end to UTC and fills defaults', () => {
    expect(createBillInput({ billing_period_end: '2026-12-01T04:00:00+04:00' }, now)).toEqual({
      bill_id: null,
      billing_period_end: '2026-12-01T00:00:00.000Z',
      currency: null,
      policy: 'usage_based',
      customer_email: null,
      customer_id: null,
      tax_rates: null,
      prices: null,
      usage_alerts: null,
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
    const parsed = createBillInput({ billing_period_end: end, grace_period: 'P2DT12H', payment_terms: 'PT5S' }, now);
    expect([parsed.grace_period, parsed.payment_terms]).toEqual(['P2DT12H', 'PT5S']);
    expect(createBillInput({ billing_period_end: end, grace_period: 'PT0S' }, now).grace_period).toBe('PT0S');
    for (const [field, value] of [
      ['grace_period', 'P31D'],
      ['grace_period', 'P1M'],
      ['grace_period', '3 days'],
      ['payment_terms', 'PT0S'],
      ['payment_terms', 'P366D'],
    ] as const) {
      expect(() => createBillInput({ billing_period_end: end, [field]: value }, now)).toThrow(
        expect.objectContaining({ details: expect.objectContaining({ field }) }),
      );
    }
  });

  it('treats null like an absent optional field', () => {
    expect(createBillInput({ billing_period_end: '2027-01-01T00:00:00Z', currency: null, bill_id: null }, now).currency).toBeNull();
  });

  it.each([
    [{ billing_period_end: '2026-11-21T12:00:00Z' }, 'billing_period_end', 'must be in the future'],
    [{ billing_period_end: '2032-11-22T00:00:00Z' }, 'billing_period_end', 'must be within 5 years'],
    [{ billing_period_end: '2027-02-30T00:00:00Z' }, 'billing_period_end', 'is not a real date and time'],
    [{}, 'billing_period_end', 'is required'],
    [{ billing_period_end: '2027-01-01T00:00:00Z', currency: 'ABC' }, 'currency', 'ABC is not a supported currency'],
    [
      { billing_period_end: '2027-01-01T00:00:00Z', description: 'a\u0000b' },
      'description',
      'must not contain NUL characters or unpaired surrogates',
    ],
    [
      { billing_period_end: '2027-01-01T00:00:00Z', interval: 'P1M' },
      'interval',
      'is only for recurring bills (policy recurring or monthly)',
    ],
    [{ policy: 'recurring' as const }, 'interval', 'is required for a recurring bill (an ISO 8601 duration such as P1M)'],
    [{ policy: 'monthly' as const, interval: 'P1W' }, 'interval', 'must be P1M (or absent) for a monthly bill'],
    [{ policy: 'recurring' as const, interval: 'P10Y' }, 'interval', 'must be at most 5 years'],
    [
      { policy: 'recurring' as const, interval: 'P1D', billing_anchor_day: 3 },
      'billing_anchor_day',
      'is only for intervals of months or years',
    ],
    [{ policy: 'recurring' as const, interval: 'P1D', grace_period: 'P1D' }, 'grace_period', 'must be shorter than the interval (P1D)'],
    [
      { policy: 'monthly' as const, recurring_fee: { amount: 1, currency: 'XYZ', description: 'x' } },
      'recurring_fee.currency',
      'XYZ is not a supported currency',
    ],
  ])('refuses %j naming %s', (body, field, reason) => {
    const err = rejection(() => createBillInput(body, now));
    expect(err.code).toBe('invalid_argument');
    expect(err.details).toEqual({ field, reason });
  });

  it('sets up a monthly bill: interval P1M, anchored on the first, its period ending at the next first', () => {
    expect(createBillInput({ policy: 'monthly' }, now)).toMatchObject({
      interval: 'P1M',
      billing_anchor_day: 1,
      billing_period_end: '2026-12-01T00:00:00.000Z',
      requested_period_end: null,
    });
  });
});

describe('newLineItem', () => {
  it('accepts a valid item and keeps metadata; absent metadata is null', () => {
    expect(newLineItem({ amount: 1, currency: 'KWD', description: 'x', metadata: { a: 1 } })).toEqual({
      amount: 1,
      currency: 'KWD',
      description: 'x',
      metadata: { a: 1 },
    });
    expect(newLineItem({ amount: 1, currency: 'USD', description: 'x' }).metadata).toBeNull();
  });

  it('refuses a currency that does not exist and metadata over 4 KB, naming the field under its prefix', () => {
    expect(rejection(() => newLineItem({ amount: 1, currency: 'XAU', description: 'x' }, 'items[2].')).details).toEqual({
      field: 'items[2].currency',
      reason: 'XAU is not a supported currency',
    });
    // 4096 bytes as JSON: {"x":"..."} is 8 bytes around the value; é is 2 bytes in UTF-8.
    expect(() => newLineItem({ amount: 1, currency: 'USD', description: 'x', metadata: { x: 'y'.repeat(4088) } })).not.toThrow();
    expect(
      rejection(() => newLineItem({ amount: 1, currency: 'USD', description: 'x', metadata: { x: 'é'.repeat(2045) } })).details,
    ).toEqual({
      field: 'metadata',
      reason: 'must be at most 4096 bytes as JSON',
    });
  });

  it('leaves the money rules to checkLineItemValues, which the workflow runs on anything', () => {
    expect(() => checkLineItemValues({ amount: 5, currency: 'USD' })).not.toThrow();
    for (const [item, field] of [
      [{ amount: 1.5, currency: 'USD' }, 'amount'],
      [{ amount: 2 ** 53, currency: 'USD' }, 'amount'],
      [{ amount: '5', currency: 'USD' }, 'amount'],
      [{ amount: 5, currency: 'usd' }, 'currency'],
      [{ amount: 5, currency: 'XAU' }, 'currency'],
    ] as const) {
      expect(rejection(() => checkLineItemValues(item)).details).toMatchObject({ field });
    }
  });
});

describe('checkStorable', () => {
  it('names the field of the first string Postgres cannot store as sent', () => {
    expect(() => checkStorable({ description: 'ok', metadata: { a: ['b', { c: 'é' }] } })).not.toThrow();
    expect(rejection(() => checkStorable({ items: [{ description: 'ok' }, { description: 'a\u0000' }] })).details).toEqual({
      field: 'items[1].description',
      reason: 'must not contain NUL characters or unpaired surrogates',
    });
    expect(rejection(() => checkStorable({ reference: '\ud800' })).details).toMatchObject({ field: 'reference' });
  });

  it("names free-form metadata as a whole, keys included (they are the client's, not the API's)", () => {
    expect(rejection(() => checkStorable({ items: [{ metadata: { deep: [{ k: '\udc00' }] } }] })).details).toMatchObject({
      field: 'items[0].metadata',
    });
    expect(rejection(() => checkStorable({ metadata: { '\u0000': 1 } })).details).toMatchObject({ field: 'metadata' });
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

describe('a page of bills', () => {
  it('defaults, splits invoice_status into a delivery or a payment state, and round-trips a cursor', () => {
    const cursor = encodeCursor(['2026-11-21T12:00:00.000Z', 'b-1']);
    expect(billsPageQuery({ cursor }, 100)).toEqual({
      status: null,
      invoice_status: null,
      payment_status: null,
      series_id: null,
      limit: 20,
      after: { created_at: '2026-11-21T12:00:00.000Z', bill_id: 'b-1' },
      live: false,
    });
    expect(billsPageQuery({ totals: 'live' }, 100).live).toBe(true);
    expect(billsPageQuery({ invoice_status: 'failed' }, 100)).toMatchObject({ invoice_status: 'failed', payment_status: null });
    expect(billsPageQuery({ invoice_status: 'overdue' }, 100)).toMatchObject({ invoice_status: null, payment_status: 'overdue' });
    expect(billsPageQuery({ status: 'draft' }, 100).status).toBe('draft');
    expect(billsPageQuery({}, 10).limit).toBe(10);
  });

  it.each([
    [{ limit: 101 }, 'limit'],
    [{ cursor: encodeCursor([1, 2]) }, 'cursor'],
    [{ cursor: encodeCursor(['2024-02-30T00:00:00.000Z', 'b-1']) }, 'cursor'],
    [{ cursor: 'not base64 json' }, 'cursor'],
  ])('refuses %j', (q, field) => {
    expect(rejection(() => billsPageQuery(q, 100)).details).toMatchObject({ field });
  });

  it('takes a page size up to the configured largest page', () => {
    expect(pageSize(undefined, 20, 100)).toBe(20);
    expect(pageSize(100, 20, 100)).toBe(100);
    expect(rejection(() => pageSize(101, 20, 100)).details).toEqual({ field: 'limit', reason: 'must be an integer from 1 to 100' });
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
