import { billWorkflowId, getBillQuery, type WriteLineItemsResult } from '../../bills/messages';
import { call, eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';
import { quietActivityEnvironment } from '../helpers/run-logs';

let stack: Stack;
/** Close steps the fault injection is holding, by bill id. */
const held = new Map<string, () => void>();
const release = (billId: string) => held.get(billId)?.();

beforeAll(async () => {
  // Fault injection: the close step waits until the test releases it, holding the bill in "closing".
  stack = await startStack({}, (a) => ({
    ...a,
    closeBill: async (input) => {
      await new Promise<void>((resolve) => held.set(input.bill_id, resolve));
      return a.closeBill(input);
    },
  }));
});
afterAll(async () => {
  for (const resume of held.values()) resume();
  await stack.stop();
});

/** A bill whose close has started and is held in "closing" until release(billId). */
async function billHeldInClosing(): Promise<{ billId: string; closing: Promise<unknown> }> {
  const billId = uid();
  await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
  await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 10, currency: 'USD', description: 'before close' });
  const closing = call(stack, 'POST', `/bills/${billId}/close`);
  await eventually(async () => held.has(billId));
  const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(billId));
  expect((await handle.query(getBillQuery)).status).toBe('closing');
  return { billId, closing };
}

describe('a bill that is closing or closed accepts no line items', () => {
  it('is refused by the workflow update validator, before anything enters history', async () => {
    const { billId, closing } = await billHeldInClosing();
    const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(billId));
    const reply = await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 5, currency: 'USD', description: 'too late' });
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ code: 'failed_precondition', details: { status: 'closing' } });

    const events = (await handle.fetchHistory()).events ?? [];
    const acceptedAdds = events.filter(
      (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'appendLineItemsUpdate',
    );
    // Only the first add was accepted; the rejected one left no trace.
    expect(acceptedAdds).toHaveLength(1);

    release(billId);
    expect(((await closing) as { status: number }).status).toBe(200);
    const bill = (await call(stack, 'GET', `/bills/${billId}`)).body;
    expect(bill.totals).toEqual([{ currency: 'USD', amount: 10, line_item_count: 1, formatted: '0.10 USD' }]);
  });

  it('is refused by the database trigger, whatever path the write takes', async () => {
    const { billId, closing } = await billHeldInClosing();
    release(billId);
    await closing;

    const insert = stack.db.query(
      `INSERT INTO line_items (line_item_id, bill_id, amount, currency, description, source_ref)
       VALUES (gen_random_uuid(), $1, 1, 'USD', 'sneaky', 'test')`,
      [billId],
    );
    await expect(insert).rejects.toMatchObject({ code: 'FE001' });
    // A row with its own position (the batch path) is checked once per statement.
    const positioned = stack.db.query(
      `INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, source_ref)
       VALUES (gen_random_uuid(), $1, 999, 1, 'USD', 'sneaky', 'test')`,
      [billId],
    );
    await expect(positioned).rejects.toMatchObject({ code: 'FE001' });
    await expect(stack.db.query('UPDATE line_items SET amount = 1 WHERE bill_id = $1', [billId])).rejects.toMatchObject({ code: 'FE001' });
    await expect(stack.db.query('DELETE FROM line_items WHERE bill_id = $1', [billId])).rejects.toMatchObject({ code: 'FE001' });
    await expect(stack.db.query(`UPDATE bills SET status = 'open', closed_at = NULL WHERE bill_id = $1`, [billId])).rejects.toMatchObject({
      code: 'FE002',
    });

    // The ledger write answers the refusal for each write, with the ledger as it stands.
    const late = (await quietActivityEnvironment().run(stack.activities().writeLineItems, {
      bill_id: billId,
      writes: [
        { item: { line_item_id: '0b8a3a46-05a4-4bb5-8c52-2f3b1a8f7e03', amount: 1, currency: 'USD', description: 'late', metadata: null } },
      ],
    })) as WriteLineItemsResult;
    expect(late.outcomes).toEqual([
      { status: 'refused', refusal: expect.objectContaining({ code: 'failed_precondition', details: { status: 'closed' } }) },
    ]);
    expect(late.snapshot.totals).toEqual({ USD: { amount: 10, count: 1 } });
    const n = await stack.db.query('SELECT count(*) FROM line_items WHERE bill_id = $1', [billId]);
    expect(Number(n.rows[0].count)).toBe(1);
  });
});

describe('positions of line items', () => {
  it('must be reserved by the inserting transaction when given explicitly', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const insertAt = (position: number) =>
      stack.db.query(
        `INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, source_ref)
       VALUES (gen_random_uuid(), $1, $2, 1, 'USD', 'unreserved', 'test')`,
        [billId, position],
      );
    await expect(insertAt(1)).rejects.toMatchObject({ code: 'FE005' });
    // Reserved by an earlier transaction: the row lock is gone, so the reservation no longer counts.
    await stack.db.query('UPDATE bills SET line_item_seq = line_item_seq + 5 WHERE bill_id = $1', [billId]);
    await expect(insertAt(2)).rejects.toMatchObject({ code: 'FE005' });
    const n = await stack.db.query('SELECT count(*) FROM line_items WHERE bill_id = $1', [billId]);
    expect(Number(n.rows[0].count)).toBe(0);
  });

  it('are append-only, and every insert path keeps the running totals', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 10, currency: 'USD', description: 'api' });
    await stack.db.query(
      `INSERT INTO line_items (line_item_id, bill_id, amount, currency, description, source_ref)
       VALUES (gen_random_uuid(), $1, 5, 'USD', 'by hand', 'test'), (gen_random_uuid(), $1, 7, 'EUR', 'by hand', 'test')`,
      [billId],
    );
    await expect(stack.db.query('UPDATE line_items SET amount = 1 WHERE bill_id = $1', [billId])).rejects.toMatchObject({ code: 'FE006' });
    await expect(stack.db.query('DELETE FROM line_items WHERE bill_id = $1', [billId])).rejects.toMatchObject({ code: 'FE006' });
    const totals = await stack.db.query(
      'SELECT currency, amount::int, line_item_count::int FROM bill_totals WHERE bill_id = $1 ORDER BY currency',
      [billId],
    );
    expect(totals.rows).toEqual([
      { currency: 'EUR', amount: 7, line_item_count: 1 },
      { currency: 'USD', amount: 15, line_item_count: 2 },
    ]);
  });
});

describe('a bill whose close has begun changes no more', () => {
  it('refuses a cancel while the bill is closing, so its series renews as it would have', async () => {
    // A recurring bill whose period ends at once; its close is held in "closing".
    const billId = uid('series');
    await call(stack, 'POST', '/bills', { bill_id: billId, policy: 'recurring', interval: 'PT2S' });
    await eventually(async () => held.has(billId), 30_000);
    const cancel = await call(stack, 'POST', `/bills/${billId}/cancel`, {});
    expect(cancel).toMatchObject({ status: 400, body: { code: 'failed_precondition', details: { status: 'closing' } } });
    release(billId);
    const bill = await eventually(async () => {
      const b = (await call(stack, 'GET', `/bills/${billId}`)).body;
      return b.status === 'closed' && b.next_bill_id ? b : null;
    }, 30_000);
    expect(bill.cancelled_at).toBeNull();
    // Its successor, held in its turn, is released so the stack can stop.
    await eventually(async () => held.has(bill.next_bill_id), 30_000);
    const next = await call(stack, 'POST', `/bills/${bill.next_bill_id}/cancel`, {});
    expect(next).toMatchObject({ status: 400, body: { code: 'failed_precondition', details: { status: 'closing' } } });
    release(bill.next_bill_id);
  });

  it('is refused by the database: no column of a closed bill changes', async () => {
    const { billId, closing } = await billHeldInClosing();
    release(billId);
    await closing;
    for (const change of [
      "description = 'edited'",
      'cancelled_at = now()',
      "customer_email = 'x@example.com'",
      'line_item_seq = line_item_seq + 1',
    ]) {
      await expect(stack.db.query(`UPDATE bills SET ${change} WHERE bill_id = $1`, [billId])).rejects.toMatchObject({ code: 'FE002' });
    }
    // Writing what is there already changes nothing, and passes (a retried no-op).
    await expect(stack.db.query('UPDATE bills SET description = description WHERE bill_id = $1', [billId])).resolves.toMatchObject({
      command: 'UPDATE',
      rowCount: 1,
    });
    // A cancel that reaches the row after the close (accepted by a previous release while closing)
    // is too late, and says so once instead of retrying forever.
    const late = quietActivityEnvironment().run(stack.activities().cancelSeries, { bill_id: billId, at: new Date().toISOString() });
    await expect(late).resolves.toBeNull();
  });
});
