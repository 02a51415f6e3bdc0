/**
 * Batch ingestion: up to 1000 line items under one key, validated first, accepted or refused as a
 * whole in one update and one insert, with the single add's guarantees.
 */
import { lineItemId } from '../../bills/line-item-ids';
import { ANONYMOUS } from '../../core/auth';
import { seedOf } from '../../core/idempotency';
import { stageBatch } from '../../bills/line-item-store';
import { batchTotals } from '../../bills/line-item-rules';
import type { Activities } from '../../temporal/activities';
import { type WriteLineItemsResult } from '../../bills/messages';
import { postProcessWorkflowId } from '../../invoices/messages';
import {
  call,
  expectReplayOf,
  inSeconds,
  ledgerSums,
  liveTotals,
  mismatchReports,
  rowsOf,
  startStack,
  uid,
  type Stack,
} from '../helpers/stack';
import { quietActivityEnvironment } from '../helpers/run-logs';

let stack: Stack;
let failNextBatchAfterCommit = false;

beforeAll(async () => {
  // Fault injection: a batch's write commits, then the activity "loses its connection" once.
  stack = await startStack({}, (a: Activities) => ({
    ...a,
    writeLineItems: async (input) => {
      const result = await a.writeLineItems(input);
      if (failNextBatchAfterCommit && input.writes.some((w) => 'batch' in w)) {
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
  (
    await stack.db.query(
      `SELECT currency, sum(amount)::bigint::int AS amount, count(*)::int AS n FROM line_items WHERE bill_id = $1 GROUP BY currency ORDER BY currency`,
      [billId],
    )
  ).rows;

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

    expectReplayOf(await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items }, headers), first);
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
    const before = await rowsOf(stack.db, { bills: [billId] });
    const items = batchOf(600).map((i) => ({ ...i, currency: 'USD' }));

    const bad = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, {
      items: items.map((it, n) => (n === 500 ? { ...it, amount: 0 } : it)),
    });
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_argument', details: { field: 'items[500].amount' } } });

    const wrongCurrency = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, {
      items: [...items, { amount: 1, currency: 'EUR', description: 'eur' }],
    });
    expect(wrongCurrency).toMatchObject({ status: 400, body: { code: 'failed_precondition' } });

    for (const body of [{}, { items: [] }, { items: batchOf(1001) }, { items: 'x' }]) {
      expect(await call(stack, 'POST', `/bills/${billId}/line-items/batch`, body)).toMatchObject({
        status: 400,
        body: { code: 'invalid_argument', details: { field: 'items' } },
      });
    }
    expect(await rowsOf(stack.db, { bills: [billId] })).toEqual(before);
  });

  it('refuses a batch for a closed or missing bill, writing nothing', async () => {
    const billId = await openBill();
    const missingId = uid();
    await call(stack, 'POST', `/bills/${billId}/close`);
    // The invoice's post-process runs on its own after the close (numbering, its account, their
    // events): an empty bill's invoice is paid at once, so its workflow ends when all is written.
    await stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId)).result();
    const scope = { bills: [billId, missingId], keys: [`${billId}-late`, `${missingId}-late`] };
    const before = await rowsOf(stack.db, scope);
    const reply = await call(
      stack,
      'POST',
      `/bills/${billId}/line-items/batch`,
      { items: batchOf(10) },
      { 'Idempotency-Key': `${billId}-late` },
    );
    expect(reply).toMatchObject({ status: 400, body: { code: 'failed_precondition' } });
    const missing = await call(
      stack,
      'POST',
      `/bills/${missingId}/line-items/batch`,
      { items: batchOf(10) },
      { 'Idempotency-Key': `${missingId}-late` },
    );
    expect(missing).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(await stored(billId)).toEqual([]);
    expect(await rowsOf(stack.db, scope)).toEqual(before);
  });

  it('counts a batch once when its activity fails after the insert committed and is retried', async () => {
    const billId = await openBill();
    failNextBatchAfterCommit = true;
    const reply = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: batchOf(50) });
    expect(reply.status).toBe(200);
    expect(failNextBatchAfterCommit).toBe(false); // the fault fired
    const total = batchOf(50).reduce((a, i) => a + i.amount, 0);
    // The workflow's own count, not the database's read twice.
    const live = await liveTotals(stack, billId);
    expect(live.line_item_count).toBe(50);
    expect(live.totals.reduce((a, t) => a + t.amount, 0)).toBe(total);
    const closed = await call(stack, 'POST', `/bills/${billId}/close`);
    expect(closed.body.bill.totals.reduce((a: number, t: { amount: number }) => a + t.amount, 0)).toBe(total);
    expect((await stored(billId)).reduce((a: number, r: { n: number }) => a + r.n, 0)).toBe(50);
    expect(await mismatchReports(stack, billId)).toBe(0);
  });
});

describe('staged batches (claim check)', () => {
  const staged = async (billId: string) =>
    (
      await stack.db.query(
        'SELECT batch_id, item_count, items IS NULL AS applied, applied_totals FROM line_item_batches WHERE bill_id = $1',
        [billId],
      )
    ).rows;
  const stage = async (billId: string, key: string) => {
    const items = batchOf(4).map((item) => ({ ...item, metadata: null }));
    const withIds = items.map((item, i) => ({ ...item, line_item_id: lineItemId(billId, `${key}\n#${i}`) }));
    const batchId = lineItemId(billId, key);
    expect(await stageBatch(stack.db, { batch_id: batchId, bill_id: billId, request_fingerprint: key, items: withIds })).toBe('staged');
    return { batch_id: batchId, item_count: items.length, totals: batchTotals(items), bill_id: billId };
  };
  const write = (
    activityId: string,
    input: { batch_id: string; item_count: number; totals: Record<string, { amount: number; count: number }>; bill_id: string },
  ) => {
    const { bill_id, ...batch } = input;
    return quietActivityEnvironment({ activityId }).run(stack.activities().writeLineItems, {
      bill_id,
      writes: [{ batch }],
    }) as Promise<WriteLineItemsResult>;
  };

  it('keeps an applied batch as a small record until the bill closes', async () => {
    const billId = await openBill();
    const reply = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: batchOf(20) }, { 'Idempotency-Key': 'k1' });
    expect(reply.status).toBe(200);
    expect(await staged(billId)).toEqual([
      {
        // Derived from the key in its caller's lane (authentication is off: the shared one).
        batch_id: lineItemId(billId, seedOf({ key: 'k1', caller: ANONYMOUS.key_id })),
        item_count: 20,
        applied: true,
        applied_totals: {
          USD: { amount: 1 + 5 + 9 + 13 + 17, count: 5 },
          GEL: { amount: 2 + 6 + 10 + 14 + 18, count: 5 },
          JPY: { amount: 3 + 7 + 11 + 15 + 19, count: 5 },
          KWD: { amount: 4 + 8 + 12 + 16 + 20, count: 5 },
        },
      },
    ]);
    await call(stack, 'POST', `/bills/${billId}/close`);
    expect(await staged(billId)).toEqual([]);
  });

  it('applies a staged batch once: any later attempt answers applied with the ledger as it is', async () => {
    const billId = await openBill();
    const input = await stage(billId, 'direct');
    const first = await write('a1', input);
    expect(first.outcomes).toEqual([{ status: 'applied' }]);
    expect(first.snapshot.totals).toEqual(input.totals);
    const again = await write('a2', input); // a retry, or the update resent to a later run
    expect(again.outcomes).toEqual([{ status: 'applied' }]);
    expect(again.snapshot.totals).toEqual(input.totals);
    expect(again.snapshot.version).toBeGreaterThan(first.snapshot.version);
    expect((await stored(billId)).reduce((n: number, r: { n: number }) => n + r.n, 0)).toBe(4);
  });

  it('refuses, and rolls back, rows that do not add up to the sums the workflow reserved', async () => {
    const billId = await openBill();
    const input = await stage(billId, 'lying');
    const wrong = { ...input, totals: { ...input.totals, USD: { amount: input.totals.USD.amount + 1, count: input.totals.USD.count } } };
    const result = await write('a1', wrong);
    expect(result.outcomes).toEqual([{ status: 'refused', refusal: expect.objectContaining({ code: 'invalid_argument' }) }]);
    expect(result.snapshot.totals).toEqual({});
    expect(await stored(billId)).toEqual([]);
    expect(await staged(billId)).toMatchObject([{ applied: false }]);
    const totals = await stack.db.query('SELECT count(*)::int AS n FROM bill_totals WHERE bill_id = $1', [billId]);
    expect(totals.rows[0].n).toBe(0);
  });

  it('refuses a batch staged for a bill that closed meanwhile, and one that is not staged', async () => {
    const billId = await openBill();
    const input = await stage(billId, 'late');
    await call(stack, 'POST', `/bills/${billId}/close`);
    // Nothing more is staged for it either.
    expect(
      await stageBatch(stack.db, { batch_id: lineItemId(billId, 'later'), bill_id: billId, request_fingerprint: 'later', items: [] }),
    ).toBe('closed');
    expect((await write('a1', input)).outcomes).toEqual([
      { status: 'refused', refusal: expect.objectContaining({ code: 'failed_precondition' }) },
    ]);
    const open = await openBill();
    const never = await write('a1', { ...input, bill_id: open, batch_id: lineItemId(open, 'never') });
    expect(never.outcomes).toEqual([{ status: 'refused', refusal: expect.objectContaining({ code: 'failed_precondition' }) }]);
    expect(await stored(billId)).toEqual([]);
  });

  it('answers a retry of an applied batch that the workflow now refuses, and keeps the batch applied', async () => {
    // The first batch takes the USD total past half the exact range, so a duplicate of it cannot
    // fit next to it: the workflow's validator refuses the resent update for good.
    const billId = await openBill();
    const items = [{ amount: 5_000_000_000_000_000, currency: 'USD', description: 'big' }];
    const headers = { 'Idempotency-Key': `${billId}-big` };
    const first = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items }, headers);
    expect(first.status).toBe(200);
    await stack.db.query('DELETE FROM idempotency_keys WHERE key = $1', [`${billId}-big`]);
    const resent = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items }, headers);
    expect(resent.status).toBe(200);
    expect(resent.body.line_item_ids).toEqual(first.body.line_item_ids);
    expect(await staged(billId)).toMatchObject([{ applied: true }]);
    expect(await ledgerSums(stack, billId)).toEqual({ n: 1, total: '5000000000000000' });
    expect((await liveTotals(stack, billId)).line_item_count).toBe(1);
  });
});
