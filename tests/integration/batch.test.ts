/**
 * Batch ingestion: up to 1000 line items under one key, validated first, accepted or refused as a
 * whole in one update and one insert, with the single add's guarantees.
 */
import type { Activities } from '../../temporal/activities';
import { call, inSeconds, startStack, tableCounts, uid, type Stack } from '../helpers/stack';

let stack: Stack;
let failNextBatchAfterCommit = false;

beforeAll(async () => {
  // Fault injection: the insert commits, then the activity "loses its connection" once.
  stack = await startStack({}, (a: Activities) => ({
    ...a,
    persistLineItems: async (input) => {
      const result = await a.persistLineItems(input);
      if (failNextBatchAfterCommit) {
        failNextBatchAfterCommit = false;
        throw new Error('connection reset after commit');
      }
      return result;
    },
  }));
});
afterAll(() => stack.stop());

const openBill = async (extra: Record<string, unknown> = {}) => {
  const billId = uid();
  expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), ...extra })).status).toBe(200);
  return billId;
};
const stored = async (billId: string) =>
  (await stack.db.query(
    `SELECT currency, sum(amount)::bigint::int AS amount, count(*)::int AS n FROM line_items WHERE bill_id = $1 GROUP BY currency ORDER BY currency`,
    [billId],
  )).rows;

const CURRENCIES = ['USD', 'GEL', 'JPY', 'KWD'];
const batchOf = (n: number, tag = 'x') =>
  Array.from({ length: n }, (_, i) => ({ amount: 1 + (i % 97), currency: CURRENCIES[i % 4], description: `${tag}-${i}` }));

describe('POST /bills/:billId/line-items/batch', () => {
  it('adds 1000 items at once with exact totals, and a retry with the key adds nothing', async () => {
    const billId = await openBill();
    const items = batchOf(1000);
    const headers = { 'Idempotency-Key': `${billId}-b1` };
    const first = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items }, headers);
    expect(first.status).toBe(200);
    expect(first.body.line_item_ids).toHaveLength(1000);
    expect(new Set(first.body.line_item_ids).size).toBe(1000);

    const expected = CURRENCIES.map((currency) => {
      const mine = items.filter((i) => i.currency === currency);
      return { currency, amount: mine.reduce((a, i) => a + i.amount, 0), n: mine.length };
    }).sort((a, b) => a.currency.localeCompare(b.currency));
    expect(await stored(billId)).toEqual(expected);
    expect(first.body.totals.map((t: any) => ({ currency: t.currency, amount: t.amount, n: t.line_item_count }))).toEqual(expected);

    expect(await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items }, headers)).toEqual(first);
    expect(await stored(billId)).toEqual(expected);

    // The same key with a different batch is refused.
    const other = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: batchOf(3, 'y') }, headers);
    expect(other).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });

    // Positions follow the batch order: paging shows the items as sent.
    const page = await call(stack, 'GET', `/bills/${billId}/line-items?limit=3`);
    expect(page.body.line_items.map((l: { description: string }) => l.description)).toEqual(['x-0', 'x-1', 'x-2']);
  });

  it('refuses the whole batch, writing nothing, when one item is bad or does not fit the bill', async () => {
    const billId = await openBill({ currency: 'USD' });
    const before = await tableCounts(stack.db);
    const items = batchOf(600).map((i) => ({ ...i, currency: 'USD' }));

    const bad = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: items.map((it, n) => (n === 500 ? { ...it, amount: 0 } : it)) });
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_argument', details: { field: 'items[500].amount' } } });

    const wrongCurrency = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: [...items, { amount: 1, currency: 'EUR', description: 'eur' }] });
    expect(wrongCurrency).toMatchObject({ status: 400, body: { code: 'failed_precondition' } });

    for (const body of [{}, { items: [] }, { items: batchOf(1001) }, { items: 'x' }]) {
      expect(await call(stack, 'POST', `/bills/${billId}/line-items/batch`, body)).toMatchObject({ status: 400, body: { details: { field: 'items' } } });
    }
    expect(await tableCounts(stack.db)).toEqual(before);
  });

  it('refuses a batch for a closed bill', async () => {
    const billId = await openBill();
    await call(stack, 'POST', `/bills/${billId}/close`);
    const reply = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: batchOf(10) });
    expect(reply).toMatchObject({ status: 400, body: { code: 'failed_precondition' } });
    expect(await stored(billId)).toEqual([]);
  });

  it('counts a batch once when its activity fails after the insert committed and is retried', async () => {
    const billId = await openBill();
    failNextBatchAfterCommit = true;
    const reply = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: batchOf(50) });
    expect(reply.status).toBe(200);
    expect(failNextBatchAfterCommit).toBe(false); // the fault fired
    const total = batchOf(50).reduce((a, i) => a + i.amount, 0);
    const live = (await call(stack, 'GET', `/bills/${billId}`)).body;
    expect(live.totals.reduce((a: number, t: { line_item_count: number }) => a + t.line_item_count, 0)).toBe(50);
    const closed = await call(stack, 'POST', `/bills/${billId}/close`);
    expect(closed.body.bill.totals.reduce((a: number, t: { amount: number }) => a + t.amount, 0)).toBe(total);
    expect((await stored(billId)).reduce((a: number, r: { n: number }) => a + r.n, 0)).toBe(50);
  });
});
