import { insertApiKey } from '../../core/auth';
import { pruneExpiredKeys } from '../../core/idempotency';
import { call, expectReplayOf, inSeconds, rowsOf, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.stop());

/** The bill's row but its ledger version (line_item_seq), which every write attempt moves on. */
async function billRow(billId: string): Promise<Record<string, unknown>> {
  const { line_item_seq: _, ...row } = (await stack.db.query('SELECT * FROM bills WHERE bill_id = $1', [billId])).rows[0];
  return row;
}

const lineItemCount = async (billId: string) =>
  Number((await stack.db.query('SELECT count(*) FROM line_items WHERE bill_id = $1', [billId])).rows[0].count);

describe('idempotency keys', () => {
  it('replays a create with the same key: same bill, one workflow', async () => {
    const key = uid('key');
    const body = { billing_period_end: inSeconds(3600), description: 'generated id' };
    const first = await call(stack, 'POST', '/bills', body, { 'X-Idempotency-Key': key });
    const again = await call(stack, 'POST', '/bills', body, { 'Idempotency-Key': key });
    expect(first.status).toBe(200);
    expectReplayOf(again, first);
    const n = await stack.db.query('SELECT count(*) FROM bills WHERE bill_id = $1', [first.body.bill_id]);
    expect(Number(n.rows[0].count)).toBe(1);
  });

  it('replays an add with the same key: one line item, counted once, same body', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const item = { amount: 300, currency: 'USD', description: 'once' };
    const first = await call(stack, 'POST', `/bills/${billId}/line-items`, item, { 'X-Idempotency-Key': 'add-1' });
    const again = await call(stack, 'POST', `/bills/${billId}/line-items`, item, { 'X-Idempotency-Key': 'add-1' });
    expectReplayOf(again, first);
    expect(await lineItemCount(billId)).toBe(1);
    expect((await call(stack, 'GET', `/bills/${billId}`)).body.totals).toEqual([
      { currency: 'USD', amount: 300, line_item_count: 1, formatted: '3.00 USD' },
    ]);
  });

  it('replays add and close with their keys even after the bill has closed', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const item = { amount: 5, currency: 'JPY', description: 'late retry' };
    const add = await call(stack, 'POST', `/bills/${billId}/line-items`, item, { 'X-Idempotency-Key': `${billId}-a` });
    const close = await call(stack, 'POST', `/bills/${billId}/close`, undefined, { 'X-Idempotency-Key': `${billId}-c` });
    expect(close.status).toBe(200);
    expectReplayOf(await call(stack, 'POST', `/bills/${billId}/line-items`, item, { 'X-Idempotency-Key': `${billId}-a` }), add);
    expectReplayOf(await call(stack, 'POST', `/bills/${billId}/close`, undefined, { 'X-Idempotency-Key': `${billId}-c` }), close);
    // Without the key, the same add is a new request, and the bill is closed.
    expect((await call(stack, 'POST', `/bills/${billId}/line-items`, item)).body.code).toBe('failed_precondition');
  });

  it.each([
    // [when, the key's record is deleted first, the field the refusal names]
    ['while its record is kept', false, 'X-Idempotency-Key'],
    // As if the key had expired: only the line item id, derived from the key, remembers it.
    ['after its record is gone', true, 'idempotency_key'],
  ])('refuses a key reused for a different line item %s, and writes nothing', async (_when, forget, field) => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const key = uid('key');
    const first = { amount: 1, currency: 'USD', description: 'a' };
    expect((await call(stack, 'POST', `/bills/${billId}/line-items`, first, { 'X-Idempotency-Key': key })).status).toBe(200);
    if (forget) await stack.db.query('DELETE FROM idempotency_keys WHERE key = $1', [key]);
    const scope = { bills: [billId], keys: [key] };
    const before = { rows: await rowsOf(stack.db, scope), bill: await billRow(billId) };

    const other = await call(stack, 'POST', `/bills/${billId}/line-items`, { ...first, amount: 2 }, { 'X-Idempotency-Key': key });
    expect(other.status).toBe(400);
    expect(other.body).toMatchObject({ code: 'invalid_argument', details: { field } });
    const after = await rowsOf(stack.db, scope);
    if (forget) {
      // Without its record the add reaches the ledger, whose write reserves positions before it
      // finds the id taken: the ledger's version (bills.line_item_seq) moves on, as after any write
      // attempt. Nothing else of the bill's, nor any other row, changes.
      expect(after).toEqual({ ...before.rows, bills: after.bills });
      expect(await billRow(billId)).toEqual(before.bill);
    } else {
      expect(after).toEqual(before.rows);
    }
    expect((await call(stack, 'GET', `/bills/${billId}`)).body.totals[0]).toMatchObject({ amount: 1, line_item_count: 1 });
  });

  it('finds the bill a lost create made when it is retried with the same key and no bill id', async () => {
    const key = uid('key');
    const body = { billing_period_end: inSeconds(3600) };
    const first = await call(stack, 'POST', '/bills', body, { 'X-Idempotency-Key': key });
    // As if the first answer had been lost and its key released (a 503 after the workflow started).
    await stack.db.query('DELETE FROM idempotency_keys WHERE key = $1', [key]);
    const retry = await call(stack, 'POST', '/bills', body, { 'X-Idempotency-Key': key });
    expect(retry.status).toBe(200);
    expect(retry.body.bill_id).toBe(first.body.bill_id);
  });

  it('answers a retried add that landed before the bill closed with the line item, not a rejection', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const item = { amount: 640, currency: 'GEL', description: 'landed' };
    const key = `${billId}-landed`;
    const first = await call(stack, 'POST', `/bills/${billId}/line-items`, item, { 'X-Idempotency-Key': key });
    await stack.db.query('DELETE FROM idempotency_keys WHERE key = $1', [key]);
    await call(stack, 'POST', `/bills/${billId}/close`);
    const retry = await call(stack, 'POST', `/bills/${billId}/line-items`, item, { 'X-Idempotency-Key': key });
    expect(retry.status).toBe(200);
    expect(retry.body.line_item).toEqual(first.body.line_item);
    expect(retry.body.totals).toEqual(first.body.totals);
    expect(await lineItemCount(billId)).toBe(1);
  });

  it('lets 10 concurrent adds with one key create exactly one line item', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const item = { amount: 999, currency: 'GEL', description: 'raced' };
    const replies = await Promise.all(
      Array.from({ length: 10 }, () => call(stack, 'POST', `/bills/${billId}/line-items`, item, { 'X-Idempotency-Key': `${billId}-same` })),
    );
    // Duplicates wait for the original and replay its answer.
    expect(replies.map((r) => r.status)).toEqual(Array(10).fill(200));
    for (const r of replies) expect(r.body).toEqual(replies[0].body);
    expect(await lineItemCount(billId)).toBe(1);
    expect((await call(stack, 'GET', `/bills/${billId}`)).body.totals[0]).toMatchObject({ amount: 999, line_item_count: 1 });
  });

  it('treats a repeated create of the same bill id and body as the same request, a different body as a conflict', async () => {
    const billId = uid();
    const body = { bill_id: billId, billing_period_end: inSeconds(3600), currency: 'USD' };
    const first = await call(stack, 'POST', '/bills', body);
    const same = await call(stack, 'POST', '/bills', body);
    expect(same.status).toBe(200);
    expect(same.body.bill_id).toBe(first.body.bill_id);
    const different = await call(stack, 'POST', '/bills', { ...body, currency: 'GEL' });
    expect(different.status).toBe(409);
    expect(different.body).toMatchObject({ code: 'already_exists' });
  });

  it('rejects a malformed idempotency key', async () => {
    const r = await call(stack, 'POST', '/bills', { billing_period_end: inSeconds(60) }, { 'X-Idempotency-Key': 'x'.repeat(256) });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_argument');
  });
});

describe('idempotency keys belong to a caller and an operation', () => {
  let authed: Stack;
  let a: { authorization: string };
  let b: { authorization: string };
  beforeAll(async () => {
    authed = await startStack({ AUTH_REQUIRED: 'true', AUTH_CACHE_MS: '0' });
    a = { authorization: `Bearer ${(await insertApiKey(authed.db, 'a', ['bills:write', 'bills:read'])).key}` };
    b = { authorization: `Bearer ${(await insertApiKey(authed.db, 'b', ['bills:write', 'bills:read'])).key}` };
  });
  afterAll(() => authed.stop());

  it("gives another caller's same key and body its own bill, not the first caller's answer", async () => {
    const key = { 'Idempotency-Key': uid('order') };
    const body = { billing_period_end: inSeconds(3600), description: 'same order number' };
    const fromA = await call(authed, 'POST', '/bills', body, { ...a, ...key });
    const fromB = await call(authed, 'POST', '/bills', body, { ...b, ...key });
    expect([fromA.status, fromB.status]).toEqual([200, 200]);
    expect(fromB.body.bill_id).not.toBe(fromA.body.bill_id);
    // Two bills, one each, and one key record per caller.
    const scope = { bills: [fromA.body.bill_id, fromB.body.bill_id], keys: [key['Idempotency-Key']] };
    const created = await rowsOf(authed.db, scope);
    expect(created).toMatchObject({ bills: expect.stringMatching(/^2 /), idempotency_keys: expect.stringMatching(/^2 /) });
    // Each caller's retry still gets its own first answer, and writes nothing.
    expectReplayOf(await call(authed, 'POST', '/bills', body, { ...a, ...key }), fromA);
    expectReplayOf(await call(authed, 'POST', '/bills', body, { ...b, ...key }), fromB);
    expect(await rowsOf(authed.db, scope)).toEqual(created);
  });

  it('lets another caller use the same key for a different request, and derives other line item ids', async () => {
    const bill = (await call(authed, 'POST', '/bills', { billing_period_end: inSeconds(3600) }, a)).body.bill_id;
    const key = { 'X-Idempotency-Key': uid('n') };
    const fromA = await call(
      authed,
      'POST',
      `/bills/${bill}/line-items`,
      { amount: 1, currency: 'USD', description: 'a' },
      { ...a, ...key },
    );
    const fromB = await call(
      authed,
      'POST',
      `/bills/${bill}/line-items`,
      { amount: 2, currency: 'USD', description: 'b' },
      { ...b, ...key },
    );
    expect([fromA.status, fromB.status]).toEqual([200, 200]);
    expect(fromB.body.line_item.line_item_id).not.toBe(fromA.body.line_item.line_item_id);
    expect(Number((await authed.db.query('SELECT count(*) FROM line_items WHERE bill_id = $1', [bill])).rows[0].count)).toBe(2);
  });

  it('takes the same key on another endpoint as another request', async () => {
    const key = { 'X-Idempotency-Key': uid('k') };
    const created = await call(authed, 'POST', '/bills', { billing_period_end: inSeconds(3600) }, { ...a, ...key });
    const added = await call(
      authed,
      'POST',
      `/bills/${created.body.bill_id}/line-items`,
      { amount: 5, currency: 'EUR', description: 'x' },
      { ...a, ...key },
    );
    expect([created.status, added.status]).toEqual([200, 200]);
  });

  it("finds what a request stored when its key's record is gone, instead of acting twice", async () => {
    // A failed attempt's record is deleted (and an expired one pruned) though its effects may have
    // landed: the ids the retry derives from its key find them.
    const key = uid('lost');
    const headers = { ...a, 'X-Idempotency-Key': key };
    const created = await call(authed, 'POST', '/bills', { billing_period_end: inSeconds(3600), description: 'before' }, headers);
    const item = { amount: 3, currency: 'USD', description: 'landed' };
    const added = await call(authed, 'POST', `/bills/${created.body.bill_id}/line-items`, item, headers);
    const batch = {
      items: [
        { amount: 1, currency: 'USD', description: 'b1' },
        { amount: 2, currency: 'USD', description: 'b2' },
      ],
    };
    const batched = await call(authed, 'POST', `/bills/${created.body.bill_id}/line-items/batch`, batch, headers);
    await authed.db.query('DELETE FROM idempotency_keys WHERE key = $1', [key]);
    const again = await call(
      authed,
      'POST',
      '/bills',
      { billing_period_end: created.body.billing_period_end, description: 'before' },
      headers,
    );
    expect(again.body.bill_id).toBe(created.body.bill_id);
    const addedAgain = await call(authed, 'POST', `/bills/${created.body.bill_id}/line-items`, item, headers);
    expect(addedAgain.body.line_item.line_item_id).toBe(added.body.line_item.line_item_id);
    const batchedAgain = await call(authed, 'POST', `/bills/${created.body.bill_id}/line-items/batch`, batch, headers);
    expect(batchedAgain.body.line_item_ids).toEqual(batched.body.line_item_ids);
    expect(
      Number((await authed.db.query('SELECT count(*) FROM line_items WHERE bill_id = $1', [created.body.bill_id])).rows[0].count),
    ).toBe(3);
  });
});

describe('expired idempotency keys', () => {
  /** Keys with answered requests of their own, as the API stored them. */
  async function storedKeys(n: number): Promise<string[]> {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const keys = Array.from({ length: n }, () => uid('prune'));
    for (const [i, key] of keys.entries()) {
      const reply = await call(
        stack,
        'POST',
        `/bills/${billId}/line-items`,
        { amount: 1 + i, currency: 'USD', description: key },
        { 'Idempotency-Key': key },
      );
      expect(reply.status).toBe(200);
    }
    return keys;
  }
  const stillStored = async (keys: string[]) =>
    (await stack.db.query<{ key: string }>('SELECT key FROM idempotency_keys WHERE key = ANY($1) ORDER BY key', [keys])).rows.map(
      (r) => r.key,
    );

  it('are deleted by the pruner in batches, and live ones are kept', async () => {
    const keys = await storedKeys(5);
    const [expired, live] = [keys.slice(0, 3), keys.slice(3)];
    // As a day past their TTL: expired a moment ago. The rest are live for hours yet (IDEMPOTENCY_TTL_HOURS).
    await stack.db.query(`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = ANY($1)`, [expired]);
    // This file's database holds no other expired key: every count is ours.
    expect(await pruneExpiredKeys(stack.db, 2)).toBe(2);
    expect(await pruneExpiredKeys(stack.db, 2)).toBe(1);
    expect(await pruneExpiredKeys(stack.db, 2)).toBe(0);
    expect(await stillStored(keys)).toEqual([...live].sort());
  });
});
