import { Worker } from '@temporalio/worker';
import { suiteDataConverter } from '../helpers/encryption';
import { formatMinorUnits } from '../../core/money';
import { billWorkflowId, getBillQuery } from '../../bills/messages';
import { call, inSeconds, liveTotals, mismatchReports, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
beforeAll(async () => {
  // A low continue-as-new threshold so a handful of items spans several workflow runs. Fifty adds
  // to one bill across ten rollovers take seconds here: a generous deadline keeps this about
  // correctness, not speed.
  stack = await startStack({ BILL_CONTINUE_AS_NEW_AFTER: '5', UPDATE_TIMEOUT_MS: '30000' });
});
afterAll(() => stack.stop());

const dbSum = async (billId: string) =>
  (await stack.db.query('SELECT count(*)::int AS n, coalesce(sum(amount), 0)::text AS total FROM line_items WHERE bill_id = $1', [billId]))
    .rows[0];

describe('concurrent adds', () => {
  it('keeps exact totals under 50 concurrent adds to one bill, rolling over as new while they arrive', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const amounts = Array.from({ length: 50 }, (_, i) => 1000 + i * 7);
    const replies = await Promise.all(
      amounts.map((amount, i) => call(stack, 'POST', `/bills/${billId}/line-items`, { amount, currency: 'USD', description: `#${i}` })),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(50).fill(200));
    // 1000 × 50 + 7 × (0 + 1 + … + 49) = 50,000 + 7 × 1,225
    const expected = 58_575;
    const totals = [{ currency: 'USD', amount: expected, line_item_count: 50, formatted: '585.75 USD' }];
    expect(await dbSum(billId)).toEqual({ n: 50, total: String(expected) });
    // The workflow's own numbers, before the close adopts the stored ones: carried across the runs
    // it continued as new in (every 5 items here) while adds were still arriving.
    const live = await liveTotals(stack, billId);
    expect(live.continued_as_new).toBeGreaterThanOrEqual(1);
    expect(live.totals).toEqual(totals);
    const closed = await call(stack, 'POST', `/bills/${billId}/close`);
    expect(closed.body.bill.totals).toEqual(totals);
    expect(await mismatchReports(stack, billId)).toBe(0);
  });

  it('answers 64 concurrent adds to one hot bill, each once, in fewer updates than adds', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const amounts = Array.from({ length: 64 }, (_, i) => 100 + i);
    const replies = await Promise.all(
      amounts.map((amount, i) =>
        call(
          stack,
          'POST',
          `/bills/${billId}/line-items`,
          { amount, currency: 'EUR', description: `hot ${i}` },
          { 'Idempotency-Key': `${billId}-hot-${i}` },
        ),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(64).fill(200));
    expect(new Set(replies.map((r) => r.body.line_item.line_item_id)).size).toBe(64);
    // Each caller's answer carries its own item and a snapshot that already counts it; the last
    // group's snapshot counts them all.
    for (const [i, r] of replies.entries()) {
      expect(r.body.line_item).toMatchObject({ amount: amounts[i], description: `hot ${i}` });
      expect(r.body.totals[0].amount).toBeGreaterThanOrEqual(amounts[i]);
    }
    expect(Math.max(...replies.map((r) => r.body.totals[0].line_item_count))).toBe(64);
    const expected = amounts.reduce((a, b) => a + b, 0);
    const live = await liveTotals(stack, billId);
    expect(live.totals).toEqual([{ currency: 'EUR', amount: expected, line_item_count: 64, formatted: formatMinorUnits(expected, 'EUR') }]);
    expect(await dbSum(billId)).toEqual({ n: 64, total: String(expected) });
    // Group commit: concurrent adds travelled together, so the history holds fewer updates than adds.
    const { events } = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).fetchHistory();
    const updates = (events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
    expect(updates).toBeLessThan(64);
    await call(stack, 'POST', `/bills/${billId}/close`);
    expect(await mismatchReports(stack, billId)).toBe(0);
  });

  it('carries totals across continue-as-new, with retried keys never counted twice', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    let expected = 0;
    for (let i = 0; i < 23; i++) {
      const item = { amount: 10 + i, currency: i % 2 ? 'GEL' : 'JPY', description: `item ${i}` };
      const headers = { 'X-Idempotency-Key': `${billId}-${i}` };
      expect((await call(stack, 'POST', `/bills/${billId}/line-items`, item, headers)).status).toBe(200);
      expected += item.amount;
    }
    // Retry of an early key after several continue-as-new runs: the update id is new to this run.
    await stack.db.query('DELETE FROM idempotency_keys WHERE key = $1', [`${billId}-0`]);
    const retried = await call(
      stack,
      'POST',
      `/bills/${billId}/line-items`,
      { amount: 10, currency: 'JPY', description: 'item 0' },
      { 'X-Idempotency-Key': `${billId}-0` },
    );
    expect(retried.status).toBe(200);

    const live = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).query(getBillQuery);
    expect(live.continued_as_new).toBeGreaterThanOrEqual(4);
    expect(live.line_item_count).toBe(23);
    expect(live.totals.reduce((s, t) => s + t.amount, 0)).toBe(expected);
    expect(await dbSum(billId)).toEqual({ n: 23, total: String(expected) });

    const closed = await call(stack, 'POST', `/bills/${billId}/close`);
    expect(closed.body.bill.totals.reduce((s: number, t: { amount: number }) => s + t.amount, 0)).toBe(expected);
    expect(closed.body.line_items).toHaveLength(23);
    expect(await mismatchReports(stack, billId)).toBe(0);

    // The last run started from carried state; its history replays deterministically.
    const history = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).fetchHistory();
    await Worker.runReplayHistory(
      { workflowBundle: { codePath: process.env.FEES_TEST_BUNDLE! }, dataConverter: suiteDataConverter() },
      history,
      billWorkflowId(billId),
    );
  });
});

describe('without a worker', () => {
  it('answers 503 unavailable within the update deadline, and a retry with the same key lands once', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    await stack.stopWorker();
    const item = { amount: 77, currency: 'USD', description: 'while down' };
    const headers = { 'X-Idempotency-Key': `${billId}-down` };
    const saved = stack.config.updateTimeoutMs;
    stack.config.updateTimeoutMs = 1500;
    try {
      const started = Date.now();
      const reply = await call(stack, 'POST', `/bills/${billId}/line-items`, item, headers);
      expect(reply.status).toBe(503);
      expect(reply.body.code).toBe('unavailable');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      stack.config.updateTimeoutMs = saved;
      await stack.startWorker();
    }
    const retry = await call(stack, 'POST', `/bills/${billId}/line-items`, item, headers);
    expect(retry.status).toBe(200);
    expect(await dbSum(billId)).toEqual({ n: 1, total: '77' });
  });
});
