/**
 * The typed client (`fees-api/client`, built into dist/ by `npm run build`) end to end against the
 * real stack, and through a fault-injecting proxy: a retried add lands exactly once, and errors
 * that retrying cannot fix are not retried.
 */
import { FeesApiError, FeesClient } from '../../client';
import { insertApiKey } from '../../core/auth';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { runCommand } from '../helpers/processes';
import { eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
let proxy: FaultProxy;
let token: string;
let admin: string;

beforeAll(async () => {
  stack = await startStack({ AUTH_REQUIRED: 'true', AUTH_CACHE_MS: '0' });
  token = (await insertApiKey(stack.db, 'billing service', ['bills:read', 'bills:write'])).key;
  admin = (await insertApiKey(stack.db, 'operator', ['admin'])).key;
  proxy = await startFaultProxy(stack.url);
});
afterAll(async () => {
  await proxy.close();
  await stack.stop();
});

// Short backoff so the tests stay quick; the policy is the same.
const direct = () => new FeesClient({ baseUrl: stack.url, token, retry: { initialDelayMs: 20, maxDelayMs: 200 } });
const viaProxy = () => new FeesClient({ baseUrl: proxy.url, token, retry: { initialDelayMs: 20, maxDelayMs: 200 } });

async function storedItems(billId: string): Promise<number> {
  const { rows } = await stack.db.query('SELECT count(*)::int AS n FROM line_items WHERE bill_id = $1', [billId]);
  return rows[0].n;
}

/** The error a call fails with. */
async function failure(p: Promise<unknown>): Promise<FeesApiError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FeesApiError);
  return err as FeesApiError;
}

describe('the typed client, end to end', () => {
  it('covers every endpoint with the service types', async () => {
    const client = direct();
    const billId = uid();
    const bill = await client.createBill({ bill_id: billId, billing_period_end: inSeconds(3600), customer_email: 'ap@example.com' });
    expect(bill).toMatchObject({ bill_id: billId, status: 'open', totals: [] });
    const added = await client.addLineItem(billId, { amount: 1250, currency: 'USD', description: 'API calls' });
    expect(added.totals).toEqual([{ currency: 'USD', amount: 1250, line_item_count: 1, formatted: '12.50 USD' }]);
    const batch = await client.addLineItems(billId, {
      items: [
        { amount: 5, currency: 'EUR', description: 'a' },
        { amount: 7, currency: 'EUR', description: 'b' },
      ],
    });
    expect(batch.line_item_ids).toHaveLength(2);
    expect((await client.getBill(billId)).totals.map((t) => [t.currency, t.amount])).toEqual([
      ['EUR', 12],
      ['USD', 1250],
    ]);
    expect((await client.listLineItems(billId, { limit: 2 })).next_cursor).not.toBeNull();
    expect((await client.listBills({ status: 'open', limit: 100 })).bills.map((b) => b.bill_id)).toContain(billId);

    const closed = await client.closeBill(billId);
    expect(closed.bill.status).toBe('closed');
    expect(closed.line_items).toHaveLength(3);
    // 409 `aborted` while the PDF is being written: the client waits it out.
    const pdf = await client.getInvoicePdf(billId, { timeoutMs: 30_000 });
    expect(Buffer.from(pdf.subarray(0, 5)).toString()).toBe('%PDF-');
    expect(await client.retryInvoice(billId)).toMatchObject({ restarted: false });

    const report = await new FeesClient({ baseUrl: stack.url, token: admin }).reconcile({ bill_id: billId });
    expect(report).toMatchObject({ ok: true, bills_checked: 1 });

    const series = await client.createBill({ policy: 'recurring', interval: 'PT1H' });
    const cancelled = await client.cancelBill(series.bill_id, { close_now: true });
    expect(cancelled).toMatchObject({ status: 'closed', cancelled_at: expect.any(String) });
  });

  it('manages webhooks with a webhooks:manage key', async () => {
    const manager = (await insertApiKey(stack.db, 'integrations', ['webhooks:manage'])).key;
    const client = new FeesClient({ baseUrl: stack.url, token: manager, retry: { initialDelayMs: 20, maxDelayMs: 200 } });
    const created = await client.createWebhook({ url: 'http://127.0.0.1:9/hooks', events: ['bill.closed'] });
    expect(created.secret).toMatch(/^whsec_/);
    const { webhook_id } = created;
    // PATCH and DELETE carry an idempotency key like every write: a replay answers the same.
    // Not every event: the invoices of this file's bills are still being finalized meanwhile.
    const patched = await client.updateWebhook(
      webhook_id,
      { events: ['bill.renewed'], description: 'renewals' },
      { idempotencyKey: uid('k') },
    );
    expect(patched).toMatchObject({ events: ['bill.renewed'], description: 'renewals', enabled: true });
    expect((await client.listWebhooks()).webhooks.map((w) => w.webhook_id)).toContain(webhook_id);
    expect(await client.getWebhook(webhook_id)).toEqual(patched);
    expect((await client.rotateWebhookSecret(webhook_id)).secret).not.toBe(created.secret);
    const ping = await client.testWebhook(webhook_id);
    expect(ping).toMatchObject({ event: { type: 'ping' }, status: 'pending' });
    expect((await client.listWebhookDeliveries(webhook_id)).deliveries.map((d) => d.delivery_id)).toEqual([ping.delivery_id]);
    expect(await client.retryWebhookDelivery(webhook_id, ping.delivery_id)).toMatchObject({ delivery_id: ping.delivery_id });
    expect(await client.deleteWebhook(webhook_id)).toEqual({ webhook_id, deleted: true });
    expect(await failure(client.getWebhook(webhook_id))).toMatchObject({ code: 'not_found', status: 404 });
    expect(await failure(direct().listWebhooks())).toMatchObject({ code: 'permission_denied', status: 403 });
  });

  it('raises the typed error with the service code, message and details, and sends the bearer token', async () => {
    const err = await failure(direct().addLineItem('no-such-bill', { amount: 1, currency: 'USD', description: 'x' }));
    expect(err).toMatchObject({ code: 'not_found', status: 404, attempts: 1, details: { bill_id: 'no-such-bill' } });
    expect(err.requestId).toEqual(expect.any(String));

    const anonymous = await failure(new FeesClient({ baseUrl: stack.url }).getBill('x'));
    expect(anonymous).toMatchObject({ code: 'unauthenticated', status: 401, attempts: 1 });
    const forbidden = await failure(direct().reconcile());
    expect(forbidden).toMatchObject({ code: 'permission_denied', status: 403 });
  });

  it('is importable as fees-api/client from the built package, with its type declarations', async () => {
    const { code, stdout } = await runCommand(process.execPath, [
      '-e',
      `
      const { FeesClient, FeesApiError } = require('fees-api/client');
      console.log(typeof FeesClient, typeof FeesApiError, require.resolve('fees-api/client'));
    `,
    ]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^function function .*dist\/client\/index\.js/);
  });
});

describe('the typed client through faults', () => {
  beforeEach(() => proxy.reset());

  const bill = async () => {
    const b = await direct().createBill({ billing_period_end: inSeconds(3600) });
    return b.bill_id;
  };

  it('lands a retried add exactly once when the answer is lost after the service acted', async () => {
    const billId = await bill();
    proxy.inject('drop-response', 'drop-response');
    const added = await viaProxy().addLineItem(billId, { amount: 300, currency: 'USD', description: 'lost answer' });
    expect(added.totals).toEqual([{ currency: 'USD', amount: 300, line_item_count: 1, formatted: '3.00 USD' }]);
    expect(proxy.seen).toHaveLength(3);
    // One key for the logical operation, on every attempt.
    expect(new Set(proxy.seen.map((r) => r.idempotencyKey)).size).toBe(1);
    expect(await storedItems(billId)).toBe(1);
  });

  it('retries 503, 504, a reset connection and 409 aborted; honours Retry-After on 429', async () => {
    const billId = await bill();
    proxy.inject({ status: 503, body: { code: 'unavailable', message: 'injected', details: null } }, { status: 504 }, 'reset', {
      status: 409,
      body: { code: 'aborted', message: 'in flight', details: null },
    });
    await viaProxy().addLineItem(billId, { amount: 1, currency: 'USD', description: 'x' });
    expect(proxy.seen.map((r) => r.fault)).toHaveLength(5);
    expect(await storedItems(billId)).toBe(1);

    proxy.seen.length = 0;
    proxy.inject({
      status: 429,
      headers: { 'retry-after': '1' },
      body: { code: 'resource_exhausted', message: 'slow down', details: null },
    });
    const t = Date.now();
    await viaProxy().addLineItem(billId, { amount: 2, currency: 'USD', description: 'y' });
    expect(Date.now() - t).toBeGreaterThanOrEqual(950);
    expect(proxy.seen).toHaveLength(2);
    expect(await storedItems(billId)).toBe(2);
  });

  it('does not retry an answer that retrying cannot change', async () => {
    const billId = await bill();
    const invalid = await failure(viaProxy().addLineItem(billId, { amount: -1, currency: 'USD', description: 'x' }));
    expect(invalid).toMatchObject({ code: 'invalid_argument', status: 400, attempts: 1, details: { field: 'amount' } });
    proxy.inject({ status: 409, body: { code: 'already_exists', message: 'taken', details: null } });
    const conflict = await failure(viaProxy().createBill({ billing_period_end: inSeconds(60) }));
    expect(conflict).toMatchObject({ code: 'already_exists', attempts: 1 });
    // A failed invoice stays failed until someone retries it: its 409 is not waited out.
    proxy.inject({ status: 409, body: { code: 'aborted', message: 'not generated', details: { invoice_status: 'failed' } } });
    expect(await failure(viaProxy().getInvoicePdf(billId))).toMatchObject({ code: 'aborted', attempts: 1 });
    // Asked to come back after the deadline: the answer is the 429, at once.
    proxy.inject({ status: 429, headers: { 'retry-after': '60' }, body: { code: 'resource_exhausted', message: 'later', details: null } });
    const t = Date.now();
    expect(await failure(viaProxy().getBill(billId, { timeoutMs: 5000 }))).toMatchObject({ code: 'resource_exhausted', status: 429 });
    expect(Date.now() - t).toBeLessThan(1000);
    expect(proxy.seen).toHaveLength(4);
    expect(await storedItems(billId)).toBe(0);
  });

  it('gives up at its deadline, and a later retry with the same key still lands once', async () => {
    const billId = await bill();
    proxy.inject({ delayMs: 2000 }, { delayMs: 2000 });
    const key = `order-${uid()}`;
    const err = await failure(
      viaProxy().addLineItem(billId, { amount: 9, currency: 'USD', description: 'slow' }, { idempotencyKey: key, timeoutMs: 1000 }),
    );
    expect(err).toMatchObject({ code: 'deadline_exceeded', status: 0 });
    // The service did act on it; the caller's retry with its key finds that.
    await eventually(async () => (await storedItems(billId)) === 1);
    const again = await viaProxy().addLineItem(billId, { amount: 9, currency: 'USD', description: 'slow' }, { idempotencyKey: key });
    expect(again.totals[0]).toMatchObject({ amount: 9, line_item_count: 1 });
    expect(await storedItems(billId)).toBe(1);
  });

  it('stops when its AbortSignal fires, also between retries', async () => {
    proxy.inject(...Array.from({ length: 20 }, () => ({ status: 503 }) as const));
    const controller = new AbortController();
    const slow = new FeesClient({ baseUrl: proxy.url, token, retry: { initialDelayMs: 5000, maxDelayMs: 5000, maxAttempts: 20 } });
    setTimeout(() => controller.abort(new Error('caller gave up')), 300);
    const t = Date.now();
    await expect(slow.getBill('whatever', { signal: controller.signal })).rejects.toThrow('caller gave up');
    expect(Date.now() - t).toBeLessThan(3000);
  });
});
