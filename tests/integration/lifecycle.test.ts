import { Worker } from '@temporalio/worker';
import { suiteDataConverter } from '../helpers/encryption';
import { billWorkflowId } from '../../bills/messages';
import { call, eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.stop());

describe('the life of a bill over HTTP', () => {
  it('creates a bill, adds USD, GEL and JPY items, shows live totals, closes with stored totals', async () => {
    const billId = uid();
    const created = await call(stack, 'POST', '/bills', {
      bill_id: billId,
      billing_period_end: inSeconds(3600),
      customer_email: 'ana@example.com',
      description: 'API usage',
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      bill_id: billId,
      status: 'open',
      policy: 'usage_based',
      currency: null,
      totals: [],
      totals_source: 'live',
    });

    // Right after a 2xx create the bill is readable.
    expect((await call(stack, 'GET', `/bills/${billId}`)).status).toBe(200);

    const items = [
      { amount: 1999, currency: 'USD', description: 'calls' },
      { amount: 1, currency: 'USD', description: 'one cent' },
      { amount: 250, currency: 'GEL', description: 'storage', metadata: { region: 'tbs' } },
      { amount: 700, currency: 'JPY', description: 'yen' },
    ];
    for (const item of items) {
      const added = await call(stack, 'POST', `/bills/${billId}/line-items`, item);
      expect(added.status).toBe(200);
      expect(added.body.line_item).toMatchObject({ bill_id: billId, ...item });
    }

    const expected = [
      { currency: 'GEL', amount: 250, line_item_count: 1, formatted: '2.50 GEL' },
      { currency: 'JPY', amount: 700, line_item_count: 1, formatted: '700 JPY' },
      { currency: 'USD', amount: 2000, line_item_count: 2, formatted: '20.00 USD' },
    ];
    const live = await call(stack, 'GET', `/bills/${billId}`);
    expect(live.body).toMatchObject({ status: 'open', totals: expected, totals_source: 'live' });

    const closed = await call(stack, 'POST', `/bills/${billId}/close`);
    expect(closed.status).toBe(200);
    expect(closed.body.bill).toMatchObject({ status: 'closed', totals: expected, totals_source: 'stored' });
    expect(closed.body.bill.closed_at).toMatch(/Z$/);
    expect(closed.body.line_items.map((li: { amount: number }) => li.amount)).toEqual([1999, 1, 250, 700]);
    expect(closed.body.next_cursor).toBeNull();

    const after = await call(stack, 'GET', `/bills/${billId}`);
    expect(after.body).toMatchObject({ status: 'closed', totals: expected, totals_source: 'stored' });
    const stored = await stack.db.query(
      'SELECT currency, amount::text, line_item_count::int FROM bill_totals WHERE bill_id = $1 ORDER BY currency',
      [billId],
    );
    expect(stored.rows).toEqual(
      expected.map(({ currency, amount, line_item_count }) => ({ currency, amount: String(amount), line_item_count })),
    );
  });

  it('closing a closed bill returns the same final bill', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 5, currency: 'KWD', description: 'fils' });
    const first = await call(stack, 'POST', `/bills/${billId}/close`);
    const second = await call(stack, 'POST', `/bills/${billId}/close`);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(first.body.bill.totals).toEqual([{ currency: 'KWD', amount: 5, line_item_count: 1, formatted: '0.005 KWD' }]);
  });

  it('starts the post-process workflow once the bill closed, without the bill waiting for it', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    await call(stack, 'POST', `/bills/${billId}/close`);
    const row = await eventually(
      async () => (await stack.db.query('SELECT workflow_id FROM bill_postprocess WHERE bill_id = $1', [billId])).rows[0],
    );
    expect(row.workflow_id).toBe(`bill-${billId}-postprocess`);
  });

  it('closes the bill by itself when the billing period ends', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3) });
    await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 42, currency: 'USD', description: 'before the end' });
    const bill = await eventually(async () => {
      const r = await call(stack, 'GET', `/bills/${billId}`);
      return r.body.status === 'closed' && r.body;
    });
    expect(bill).toMatchObject({ totals: [{ currency: 'USD', amount: 42 }], totals_source: 'stored' });
    expect(Date.parse(bill.closed_at)).toBeGreaterThanOrEqual(Date.parse(bill.billing_period_end));
    const history = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).fetchHistory();
    await Worker.runReplayHistory(
      { workflowBundle: { codePath: process.env.FEES_TEST_BUNDLE! }, dataConverter: suiteDataConverter() },
      history,
      billWorkflowId(billId),
    );
  });

  it('replays the recorded history of a bill closed on request, with a rejected update, deterministically', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 10, currency: 'USD', description: 'a' });
    await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: -1, currency: 'USD', description: 'rejected' });
    await call(stack, 'POST', `/bills/${billId}/close`);
    const history = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).fetchHistory();
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: { codePath: process.env.FEES_TEST_BUNDLE! }, dataConverter: suiteDataConverter() },
        history,
        billWorkflowId(billId),
      ),
    ).resolves.toBeUndefined();
  });
});
