import { call, inSeconds, liveTotals, mismatchReports, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
const failedOnce = new Set<string>();

beforeAll(async () => {
  // Fault injection: the first attempt of a write with a "flaky" item commits its row, then loses
  // its answer, as when a connection drops between the database commit and the result.
  stack = await startStack({}, (a) => ({
    ...a,
    writeLineItems: async (input) => {
      const result = await a.writeLineItems(input);
      for (const w of input.writes) {
        if ('item' in w && w.item.description.startsWith('flaky') && !failedOnce.has(w.item.line_item_id)) {
          failedOnce.add(w.item.line_item_id);
          throw new Error('connection reset after commit');
        }
      }
      return result;
    },
  }));
});
afterAll(() => stack.stop());

describe('an activity retried after its insert committed', () => {
  it('counts the line item exactly once: neither lost from the totals nor doubled', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const flaky = await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 250, currency: 'USD', description: 'flaky item' });
    expect(flaky.status).toBe(200);
    await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 100, currency: 'USD', description: 'steady item' });
    expect(failedOnce.size).toBe(1);

    const bill = (await call(stack, 'GET', `/bills/${billId}`)).body;
    expect(bill.totals_source).toBe('live');
    expect(bill.totals).toEqual([{ currency: 'USD', amount: 350, line_item_count: 2, formatted: '3.50 USD' }]);
    expect((await liveTotals(stack, billId)).line_item_count).toBe(2);
    const rows = await stack.db.query('SELECT count(*)::int AS n FROM line_items WHERE bill_id = $1', [billId]);
    expect(rows.rows[0].n).toBe(2);

    const closed = await call(stack, 'POST', `/bills/${billId}/close`);
    expect(closed.body.bill.totals).toEqual(bill.totals);
    expect(await mismatchReports(stack, billId)).toBe(0);
  });
});
