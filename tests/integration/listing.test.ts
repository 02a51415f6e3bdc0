import { call, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
const open: string[] = [];
const closed: string[] = [];
beforeAll(async () => {
  // Live reads get a deadline this file does not test (files run in parallel on a loaded machine);
  // the fallback test below sets its own short one.
  stack = await startStack({ LIST_QUERY_TIMEOUT_MS: '10000', QUERY_TIMEOUT_MS: '10000' });
  for (let i = 0; i < 5; i++) {
    const billId = uid('list');
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 100 + i, currency: 'USD', description: `item ${i}` });
    (i % 2 === 0 ? open : closed).push(billId);
  }
  for (const billId of closed) await call(stack, 'POST', `/bills/${billId}/close`);
});
afterAll(() => stack.stop());

/** Walks every page of a listing and returns the bills in order. */
async function walk(query: string, limit: number): Promise<any[]> {
  const seen: any[] = [];
  let cursor: string | null = null;
  do {
    const r: { status: number; body: any } = await call(stack, 'GET', `/bills?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(r.status).toBe(200);
    expect(r.body.bills.length).toBeLessThanOrEqual(limit);
    seen.push(...r.body.bills);
    cursor = r.body.next_cursor;
  } while (cursor);
  return seen;
}

describe('listing bills', () => {
  it('lists open and closed bills with their stored totals and version, in one query', async () => {
    const openBills = (await walk('status=open', 100)).filter((b) => open.includes(b.bill_id));
    expect(openBills.map((b) => b.bill_id)).toEqual([...open].reverse());
    for (const b of openBills) expect(b).toMatchObject({ status: 'open', totals_source: 'stored', version: 1 });
    expect(openBills.at(-1).totals).toEqual([{ currency: 'USD', amount: 100, line_item_count: 1, formatted: '1.00 USD' }]);
    // The same numbers the bill's workflow holds.
    const single = (await call(stack, 'GET', `/bills/${open[0]}`)).body;
    expect(single).toMatchObject({ totals_source: 'live', version: 1, totals: openBills.at(-1).totals });

    const closedBills = (await walk('status=closed', 100)).filter((b) => closed.includes(b.bill_id));
    expect(closedBills.map((b) => b.bill_id)).toEqual([...closed].reverse());
    for (const b of closedBills) expect(b).toMatchObject({ status: 'closed', totals_source: 'stored' });
    expect(closedBills[0].totals).toEqual([{ currency: 'USD', amount: 103, line_item_count: 1, formatted: '1.03 USD' }]);
  });

  it('reads open bills live from their workflows when asked to', async () => {
    const openBills = (await walk('status=open&totals=live', 100)).filter((b) => open.includes(b.bill_id));
    expect(openBills.map((b) => b.bill_id)).toEqual([...open].reverse());
    for (const b of openBills) expect(b).toMatchObject({ status: 'open', totals_source: 'live', version: 1 });
    const closedBills = (await walk('status=closed&totals=live', 100)).filter((b) => closed.includes(b.bill_id));
    for (const b of closedBills) expect(b).toMatchObject({ status: 'closed', totals_source: 'stored' });
  });

  it('pages newest first, then by bill id, each bill once, when several share a millisecond', async () => {
    const tied: string[] = [];
    for (let i = 0; i < 3; i++) {
      tied.push(uid('tie'));
      expect((await call(stack, 'POST', '/bills', { bill_id: tied[i], billing_period_end: inSeconds(3600) })).status).toBe(200);
    }
    // Made one after another, bills never share a millisecond; a burst of creates does. These
    // three now share the newest, so pages of two split the tie.
    await stack.db.query(`UPDATE bills SET created_at = date_trunc('milliseconds', now()) WHERE bill_id = ANY($1)`, [tied]);
    const { rows } = await stack.db.query<{ bill_id: string; created_at: Date }>('SELECT bill_id, created_at FROM bills');
    const expected = rows
      .sort((a, b) => b.created_at.getTime() - a.created_at.getTime() || (a.bill_id < b.bill_id ? 1 : -1))
      .map((b) => b.bill_id);

    expect((await walk('', 2)).map((b) => b.bill_id)).toEqual(expected);
    expect((await walk('', 100)).map((b) => b.bill_id)).toEqual(expected);
  });

  it("pages a bill's line items oldest first", async () => {
    const billId = uid('items');
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    for (let i = 0; i < 7; i++) {
      await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: i + 1, currency: 'JPY', description: `n${i}` });
    }
    const descriptions: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: { status: number; body: any } = await call(
        stack,
        'GET',
        `/bills/${billId}/line-items?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(r.status).toBe(200);
      descriptions.push(...r.body.line_items.map((li: { description: string }) => li.description));
      cursor = r.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(descriptions).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
  });

  it('falls back to stored totals, and says so, when a workflow does not answer', async () => {
    await stack.stopWorker();
    // A live query that cannot reach its workflow gives up quickly and falls back.
    const saved = { list: stack.config.listQueryTimeoutMs, one: stack.config.queryTimeoutMs };
    stack.config.listQueryTimeoutMs = 300;
    stack.config.queryTimeoutMs = 300;
    try {
      const started = Date.now();
      const bills = (await walk('status=open&totals=live', 100)).filter((b) => open.includes(b.bill_id));
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(bills).toHaveLength(open.length);
      for (const b of bills) {
        expect(b.totals_source).toBe('stored');
        expect(b.totals).toHaveLength(1);
      }
      const single = await call(stack, 'GET', `/bills/${open[0]}`);
      expect(single.body).toMatchObject({ status: 'open', totals_source: 'stored', totals: [{ currency: 'USD', amount: 100 }] });
    } finally {
      Object.assign(stack.config, { listQueryTimeoutMs: saved.list, queryTimeoutMs: saved.one });
      await stack.startWorker();
    }
  });
});
