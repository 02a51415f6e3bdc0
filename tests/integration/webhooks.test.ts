/**
 * Webhooks end to end, on the real stack: events written with their changes, delivered by
 * Temporal to a receiver on loopback that verifies every signature with the Standard Webhooks
 * reference library, through failing receivers, a killed worker, rotations and disabling.
 */
import { ApplicationFailure } from '@temporalio/common';
import { insertApiKey } from '../../core/auth';
import { loadConfig } from '../../core/config';
import { createLogger } from '../../core/log';
import { buildServer } from '../../host/server';
import { attemptDelivery } from '../../webhooks/delivery';
import { SecretBox } from '../../webhooks/secrets';
import {
  TEST_WEBHOOK_SECRETS_KEY,
  call,
  eventually,
  inSeconds,
  logSink,
  startCrashingWorker,
  startStack,
  tableCounts,
  uid,
  type Stack,
  KILLED_WORKER_ENV,
} from '../helpers/stack';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver';

let stack: Stack;
let receiver: Receiver;
let logLines: Record<string, any>[] = [];
const registered: string[] = [];
const made: string[] = [];

const ENV = {
  // Fast retries and short windows, so the failure paths play out in seconds.
  WEBHOOK_RETRY_INITIAL_MS: '100',
  WEBHOOK_RETRY_MAX_INTERVAL_MS: '400',
  WEBHOOK_RETRY_FOR_MS: '15000',
  WEBHOOK_DISABLE_AFTER_MS: '8000',
  WEBHOOK_TIMEOUT_MS: '1500',
  WEBHOOK_RESPONSE_BODY_LIMIT: '64',
  POSTPROCESS_MAX_ATTEMPTS: '1',
  ...KILLED_WORKER_ENV,
};

beforeAll(async () => {
  receiver = await startReceiver();
  const sink = logSink();
  logLines = sink.lines;
  // Invoices of bills whose id starts with "fail-" cannot be emailed: that makes invoice.failed.
  stack = await startStack(
    ENV,
    (a) => ({
      ...a,
      deliverInvoice: async (input) => {
        if (input.bill_id.startsWith('fail-')) throw ApplicationFailure.nonRetryable('the mail server refused the recipient');
        return a.deliverInvoice(input);
      },
    }),
    { log: createLogger('info', { component: 'worker' }, sink.stream) },
  );
});
afterAll(async () => {
  // Receivers of this file are gone after it: nothing of theirs may linger for later files.
  for (const id of registered) await call(stack, 'DELETE', `/webhooks/${id}`);
  // Nor open bills of this file, whose workflows lose their worker with this stack.
  for (const id of made) await call(stack, 'POST', `/bills/${id}/close`);
  await stack.stop();
  await receiver.stop();
});

async function register(path: string, events: string[], behaviour?: Parameters<Receiver['route']>[2], body?: (n: number) => string) {
  const created = await call(stack, 'POST', '/webhooks', { url: receiver.url(path), events, description: `test ${path}` });
  expect(created.status).toBe(200);
  registered.push(created.body.webhook_id);
  receiver.route(path, [created.body.secret], behaviour, body);
  return created.body as { webhook_id: string; secret: string };
}

const deliveries = async (webhookId: string) => (await call(stack, 'GET', `/webhooks/${webhookId}/deliveries`)).body.deliveries as any[];

async function openBill(opts: Record<string, unknown> = {}) {
  const billId = (opts.bill_id as string) ?? uid();
  made.push(billId);
  const created = await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), ...opts });
  expect(created.status).toBe(200);
  return created.body;
}

describe('events', () => {
  it('each event type arrives once per subscribed endpoint, after its change committed, signed', async () => {
    const all = await register('/all', ['*'], async (_n, r) => {
      // What the event reports is committed by the time it arrives.
      if (r.event.type === 'bill.closed') {
        const { rows } = await stack.db.query('SELECT status FROM bills WHERE bill_id = $1', [r.event.data.bill_id]);
        if (rows[0]?.status !== 'closed') throw new Error('bill.closed arrived before its close committed');
      }
      return 200;
    });
    const closes = await register('/closes', ['bill.closed']);

    // bill.created, bill.closed, invoice.sent
    const paid = await openBill({ customer_email: 'someone@example.com' });
    expect(
      (await call(stack, 'POST', `/bills/${paid.bill_id}/line-items`, { amount: 1250, currency: 'EUR', description: 'calls' })).status,
    ).toBe(200);
    expect((await call(stack, 'POST', `/bills/${paid.bill_id}/close`)).status).toBe(200);
    // invoice.failed
    const failing = await openBill({ bill_id: uid('fail'), customer_email: 'nobody@example.com' });
    expect((await call(stack, 'POST', `/bills/${failing.bill_id}/close`)).status).toBe(200);
    // bill.renewed (and the next bill's bill.created) when the first period of a series ends, then
    // series.cancelled and its bill.closed
    const series = await openBill({ policy: 'recurring', interval: 'PT3S', billing_period_end: undefined });
    const next = await eventually(
      async () => (await call(stack, 'GET', `/bills/${series.bill_id}`)).body.next_bill_id as string | null,
      30_000,
    );
    expect((await call(stack, 'POST', `/bills/${next}/cancel`, { close_now: true })).status).toBe(200);

    const mine = new Set([paid.bill_id, failing.bill_id, series.bill_id, next]);
    const expected = [
      ['bill.created', paid.bill_id],
      ['bill.closed', paid.bill_id],
      ['invoice.sent', paid.bill_id],
      ['bill.created', failing.bill_id],
      ['bill.closed', failing.bill_id],
      ['invoice.failed', failing.bill_id],
      ['bill.created', series.bill_id],
      ['bill.closed', series.bill_id],
      ['bill.created', next],
      ['bill.renewed', next],
      ['series.cancelled', next],
      ['bill.closed', next],
      // Every closed bill's invoice is finalized; one with nothing on it is paid at once.
      ...[paid.bill_id, failing.bill_id, series.bill_id, next].map((b) => ['invoice.finalized', b]),
      ...[failing.bill_id, series.bill_id, next].map((b) => ['invoice.paid', b]),
    ].map(([type, bill]) => `${type} ${bill}`);
    const seen = (path: string) =>
      receiver
        .at(path)
        .filter((r) => mine.has(r.event.data.bill_id))
        .map((r) => `${r.event.type} ${r.event.data.bill_id}`);
    await eventually(async () => expected.every((e) => seen('/all').includes(e)) && seen('/closes').length >= 4, 60_000);
    // Anything late or doubled would show within this second.
    await new Promise((r) => setTimeout(r, 1000));
    expect(seen('/all').sort()).toEqual([...expected].sort());
    expect(seen('/closes').sort()).toEqual(expected.filter((e) => e.startsWith('bill.closed')).sort());

    for (const r of [...receiver.at('/all'), ...receiver.at('/closes')]) {
      expect(r.verifiedWith).toHaveLength(1);
      expect(r.id).toBe(r.event.id);
      // { id, type, created_at, data } in that order, compact, as a receiver would log it.
      expect(Object.keys(r.event)).toEqual(['id', 'type', 'created_at', 'data']);
      expect(r.body).toBe(JSON.stringify(r.event));
      expect(r.event.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    // One event, the same id, for every endpoint it went to.
    const closedAll = receiver.at('/all').find((r) => r.event.type === 'bill.closed' && r.event.data.bill_id === paid.bill_id)!;
    const closedOnly = receiver.at('/closes').find((r) => r.event.data.bill_id === paid.bill_id)!;
    expect(closedOnly.id).toBe(closedAll.id);
    expect(closedOnly.body).toBe(closedAll.body);
    // The full resource: the bill as GET /bills/:id shows it, final totals included.
    const { body: bill } = await call(stack, 'GET', `/bills/${paid.bill_id}`);
    expect(closedAll.event.data).toMatchObject({ bill_id: paid.bill_id, status: 'closed', totals: bill.totals, closed_at: bill.closed_at });
    const renewed = receiver.at('/all').find((r) => r.event.type === 'bill.renewed')!;
    expect(renewed.event.data).toMatchObject({ bill_id: next, previous_bill_id: series.bill_id, series_id: series.bill_id });
    const failed = receiver.at('/all').find((r) => r.event.type === 'invoice.failed' && r.event.data.bill_id === failing.bill_id)!;
    expect(failed.event.data).toMatchObject({ status: 'failed', failed_step: 'deliver' });
    const sent = receiver.at('/all').find((r) => r.event.type === 'invoice.sent' && r.event.data.bill_id === paid.bill_id)!;
    expect(sent.event.data).toMatchObject({
      status: 'sent',
      recipient: 'someone@example.com',
      invoice_number: bill.invoice.invoice_number,
    });

    const list = await deliveries(all.webhook_id);
    expect(list.filter((d) => mine.has(receiver.received.find((r) => r.id === d.event.id)?.event.data.bill_id))).toHaveLength(
      expected.length,
    );
    expect(list.every((d) => d.status === 'succeeded' && d.attempts === 1 && d.last_status_code === 200)).toBe(true);
    expect((await deliveries(closes.webhook_id)).map((d) => d.event.type)).toEqual(expect.arrayContaining(['bill.closed']));
  }, 120_000);

  it('a change that rolls back records no event', async () => {
    const before = await stack.db.query('SELECT count(*)::int AS n FROM webhook_events');
    const client = await stack.db.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT webhook_emit('bill.closed', '{"bill_id":"never"}'::json)`);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect((await stack.db.query('SELECT count(*)::int AS n FROM webhook_events')).rows[0].n).toBe(before.rows[0].n);
  });
});

describe('delivery', () => {
  it('a receiver answering 500 three times, then 200, gets the event 4 times with one webhook-id', async () => {
    const hook = await register(
      '/flaky',
      ['bill.created'],
      (n) => (n <= 3 ? 500 : 200),
      (n) => (n <= 3 ? 'x'.repeat(5000) : 'ok'),
    );
    const bill = await openBill();
    const got = await eventually(async () => {
      const r = receiver.at('/flaky').filter((x) => x.event.data.bill_id === bill.bill_id);
      return r.length >= 4 && r;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.at('/flaky').filter((x) => x.event.data.bill_id === bill.bill_id)).toHaveLength(4);
    expect(new Set(got.map((r) => r.id)).size).toBe(1);
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    expect(got.every((r) => r.verifiedWith.length === 1)).toBe(true);
    const [delivery] = await deliveries(hook.webhook_id);
    expect(delivery).toMatchObject({ status: 'succeeded', attempts: 4, last_status_code: 200, last_response_body: 'ok' });
    // One log line per failed attempt, naming the event; a failed answer's body is kept truncated.
    const failures = logLines.filter((l) => l.event === 'webhook_attempt_failed' && l.event_id === got[0].id);
    expect(failures.map((l) => l.attempt)).toEqual([1, 2, 3]);
    const { rows } = await stack.db.query(`SELECT max(length(last_response_body)) AS n FROM webhook_deliveries WHERE webhook_id = $1`, [
      hook.webhook_id,
    ]);
    expect(Number(rows[0].n)).toBeLessThanOrEqual(64);
  }, 60_000);

  it('a worker killed mid-delivery loses nothing: the next attempt delivers with the same webhook-id', async () => {
    let released = false;
    const hook = await register('/slow', ['bill.created'], (n) => (n === 1 && !released ? 'hang' : 200));
    await stack.stopWorker();
    const crashing = await startCrashingWorker(stack, 'when-killed', ENV);
    let bill: { bill_id: string } | undefined;
    try {
      const billId = uid();
      // The bill's own workflow needs the worker too: created while the crashing one polls.
      bill = await openBill({ bill_id: billId });
      await eventually(async () => receiver.at('/slow').some((r) => r.event.data.bill_id === billId), 30_000);
      crashing.kill();
      expect(await crashing.exited).toBe('SIGKILL');
    } finally {
      released = true;
      await stack.startWorker();
    }
    const got = await eventually(async () => {
      const r = receiver.at('/slow').filter((x) => x.event.data.bill_id === bill!.bill_id && x.answered === 200);
      return r.length > 0 && r;
    }, 40_000);
    const all = receiver.at('/slow').filter((x) => x.event.data.bill_id === bill!.bill_id);
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(new Set(all.map((r) => r.id))).toEqual(new Set([got[0].id]));
    const [delivery] = await deliveries(hook.webhook_id);
    expect(delivery.status).toBe('succeeded');
  }, 90_000);

  it('after a rotation both secrets verify during the overlap, then only the new one', async () => {
    const hook = await register('/rotating', ['bill.created']);
    const rotated = await call(stack, 'POST', `/webhooks/${hook.webhook_id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(hook.secret);
    expect(Date.parse(rotated.body.previous_secret_expires_at) - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
    receiver.route('/rotating', [hook.secret, rotated.body.secret]);

    const during = await call(stack, 'POST', `/webhooks/${hook.webhook_id}/test`);
    expect(during.status).toBe(200);
    const first = await eventually(async () => receiver.at('/rotating').find((r) => r.event.type === 'ping'));
    expect(first.verifiedWith.sort()).toEqual([hook.secret, rotated.body.secret].sort());
    expect(first.signature.split(' ')).toHaveLength(2);

    // The overlap ends: only the new secret signs.
    await stack.db.query(`UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE webhook_id = $1`, [
      hook.webhook_id,
    ]);
    await call(stack, 'POST', `/webhooks/${hook.webhook_id}/test`);
    const second = await eventually(async () => receiver.at('/rotating').filter((r) => r.event.type === 'ping')[1]);
    expect(second.verifiedWith).toEqual([rotated.body.secret]);
    expect((await call(stack, 'GET', `/webhooks/${hook.webhook_id}`)).body.previous_secret_expires_at).toBeNull();
  }, 30_000);

  it('a disabled endpoint gets nothing; one failing for too long is disabled and says why', async () => {
    const off = await register('/off', ['*']);
    const patched = await call(stack, 'PATCH', `/webhooks/${off.webhook_id}`, { enabled: false });
    expect(patched.body).toMatchObject({ enabled: false, disabled_reason: 'disabled by an API request' });
    const broken = await register('/broken', ['bill.created'], () => 503);

    // Pings keep it failing (bills would too, but would be left open for later files to list).
    let pings = 0;
    const disabled = await eventually(async () => {
      const { body } = await call(stack, 'GET', `/webhooks/${broken.webhook_id}`);
      if (body.enabled && (await call(stack, 'POST', `/webhooks/${broken.webhook_id}/test`)).status === 200) pings++;
      return !body.enabled && body;
    }, 30_000);
    expect(disabled.disabled_reason).toMatch(/^every delivery failed since .*; the last: the receiver answered HTTP 503$/);
    expect(disabled.failing_since).not.toBeNull();
    const cutOff = receiver.at('/broken').length;
    const after = await openBill();
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.at('/broken')).toHaveLength(cutOff);
    expect(receiver.at('/off')).toHaveLength(0);
    expect(await deliveries(off.webhook_id)).toHaveLength(0);
    const statuses = new Set((await deliveries(broken.webhook_id)).map((d) => d.status));
    expect(statuses.has('pending')).toBe(false);
    expect(pings).toBeGreaterThan(0);
    expect((await deliveries(broken.webhook_id)).some((d) => d.event.id && d.status === 'cancelled')).toBe(true);
    expect(receiver.at('/broken').some((r) => r.event.data.bill_id === after.bill_id)).toBe(false);

    // Enabled again and its receiver fixed: a failed delivery goes out again by hand, same id.
    receiver.route('/broken', [broken.secret], () => 200);
    expect((await call(stack, 'PATCH', `/webhooks/${broken.webhook_id}`, { enabled: true })).body).toMatchObject({
      enabled: true,
      disabled_reason: null,
      failing_since: null,
    });
    const [last] = await deliveries(broken.webhook_id);
    const retried = await call(stack, 'POST', `/webhooks/${broken.webhook_id}/deliveries/${last.delivery_id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.status).toBe('pending');
    await eventually(async () => receiver.at('/broken').some((r) => r.id === last.event.id && r.answered === 200), 20_000);
    const done = (await deliveries(broken.webhook_id)).find((d) => d.delivery_id === last.delivery_id);
    expect(done.status).toBe('succeeded');
  }, 60_000);
});

describe('the API', () => {
  it('answers the secret once, stores it only sealed, replays a create by its key, and logs no secret', async () => {
    const key = { 'idempotency-key': uid('key') };
    const body = { url: receiver.url('/keyed'), events: ['bill.closed', 'bill.created', 'bill.closed'] };
    const first = await call(stack, 'POST', '/webhooks', body, key);
    const again = await call(stack, 'POST', '/webhooks', body, key);
    registered.push(first.body.webhook_id);
    expect(first.status).toBe(200);
    expect(first.body.events).toEqual(['bill.closed', 'bill.created']);
    expect(again.body).toEqual(first.body);
    const { secret, webhook_id } = first.body;
    expect((await call(stack, 'GET', `/webhooks/${webhook_id}`)).body).not.toHaveProperty('secret');
    const listed = (await call(stack, 'GET', '/webhooks?limit=100')).body.webhooks;
    expect(listed.find((w: any) => w.webhook_id === webhook_id)).not.toHaveProperty('secret');

    const stored = await stack.db.query(
      `SELECT (SELECT row_to_json(w)::text FROM webhook_endpoints w WHERE webhook_id = $1) AS endpoint,
              (SELECT string_agg(response_body::text, '') FROM idempotency_keys) AS answers`,
      [webhook_id],
    );
    expect(stored.rows[0].endpoint).not.toContain(secret.slice(6));
    expect(stored.rows[0].answers).not.toContain(secret.slice(6));
    const sealed = (await stack.db.query('SELECT secret_ciphertext FROM webhook_endpoints WHERE webhook_id = $1', [webhook_id])).rows[0];
    expect(new SecretBox(Buffer.from(TEST_WEBHOOK_SECRETS_KEY, 'base64')).open(sealed.secret_ciphertext)).toBe(secret);
    expect(() => new SecretBox(Buffer.alloc(32, 1)).open(sealed.secret_ciphertext)).toThrow(/cannot be opened/);
    expect(JSON.stringify(logLines)).not.toContain(secret.slice(6));
  });

  it('refuses bad input with a 400 naming the field and writes nothing', async () => {
    const before = await tableCounts(stack.db);
    const cases: [string, string, unknown, string][] = [
      ['POST', '/webhooks', { events: ['*'] }, 'url'],
      ['POST', '/webhooks', { url: 'ftp://example.com/x', events: ['*'] }, 'url'],
      ['POST', '/webhooks', { url: 'https://user:pw@example.com/x', events: ['*'] }, 'url'],
      ['POST', '/webhooks', { url: 'https://example.com/x', events: [] }, 'events'],
      ['POST', '/webhooks', { url: 'https://example.com/x', events: ['bill.deleted'] }, 'events'],
      ['POST', '/webhooks', { url: 'https://example.com/x', events: ['*', 'bill.closed'] }, 'events'],
      ['POST', '/webhooks', { url: 'https://example.com/x', events: ['*'], secret: 'mine' }, 'secret'],
      ['PATCH', `/webhooks/${registered[0]}`, {}, 'body'],
      ['PATCH', `/webhooks/${registered[0]}`, { enabled: 'yes' }, 'enabled'],
      ['GET', `/webhooks/${registered[0]}/deliveries?status=lost`, undefined, 'status'],
      ['POST', `/webhooks/${registered[0]}/deliveries/not-a-uuid/retry`, undefined, 'deliveryId'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await call(stack, method, path, body);
      expect([path, res.status, res.body.code, res.body.details?.field]).toEqual([path, 400, 'invalid_argument', field]);
    }
    for (const [method, path] of [
      ['GET', '/webhooks/nope'],
      ['PATCH', '/webhooks/nope'],
      ['DELETE', '/webhooks/nope'],
      ['POST', '/webhooks/nope/test'],
    ]) {
      const res = await call(stack, method, path, method === 'PATCH' ? { enabled: true } : undefined);
      expect([path, res.status, res.body.code]).toEqual([path, 404, 'not_found']);
    }
    expect(await tableCounts(stack.db)).toEqual(before);
  });
});

describe('outbox', () => {
  it('records series.cancelled once, however often the cancel is written again', async () => {
    const series = await openBill({ policy: 'recurring', interval: 'PT1H', billing_period_end: undefined });
    const { cancelSeries } = stack.activities();
    const at = new Date().toISOString();
    expect(await cancelSeries({ bill_id: series.bill_id, at })).toBe(at);
    // A retried activity, or a second cancel request: the first time stays, and so does its one event.
    expect(await cancelSeries({ bill_id: series.bill_id, at: new Date(Date.now() + 5000).toISOString() })).toBe(at);
    const { rows } = await stack.db.query(
      `SELECT count(*)::int AS n FROM webhook_events WHERE type = 'series.cancelled' AND payload->'data'->>'bill_id' = $1`,
      [series.bill_id],
    );
    expect(rows[0].n).toBe(1);
    await call(stack, 'POST', `/bills/${series.bill_id}/cancel`, { close_now: true });
  });

  it('pages deliveries and webhooks without skipping rows made within one millisecond', async () => {
    const hook = await register('/paged', ['bill.renewed']);
    const pings = [];
    for (let i = 0; i < 5; i++) pings.push((await call(stack, 'POST', `/webhooks/${hook.webhook_id}/test`)).body.delivery_id);
    const seen: string[] = [];
    for (let cursor = ''; ;) {
      const page = (await call(stack, 'GET', `/webhooks/${hook.webhook_id}/deliveries?limit=2${cursor}`)).body;
      seen.push(...page.deliveries.map((d: { delivery_id: string }) => d.delivery_id));
      if (!page.next_cursor) break;
      cursor = `&cursor=${page.next_cursor}`;
    }
    expect(seen.sort()).toEqual(pings.sort());
    const forged = Buffer.from(JSON.stringify([new Date().toISOString(), 'not-a-uuid'])).toString('base64url');
    const refused = await call(stack, 'GET', `/webhooks/${hook.webhook_id}/deliveries?cursor=${forged}`);
    expect([refused.status, refused.body.details?.field]).toEqual([400, 'cursor']);

    const listed: string[] = [];
    for (let cursor = ''; ;) {
      const page = (await call(stack, 'GET', `/webhooks?limit=1${cursor}`)).body;
      listed.push(...page.webhooks.map((w: { webhook_id: string }) => w.webhook_id));
      if (!page.next_cursor) break;
      cursor = `&cursor=${page.next_cursor}`;
    }
    expect(listed).toEqual(expect.arrayContaining(registered));
    expect(new Set(listed).size).toBe(listed.length);
  });
});

describe('production mode', () => {
  it('refuses receivers on private addresses and needs the webhooks:manage scope', async () => {
    const config = loadConfig({
      ...process.env,
      NODE_ENV: 'production',
      DATABASE_URL: stack.config.databaseUrl,
      TEMPORAL_ADDRESS: stack.config.temporal.address,
      WEBHOOK_SECRETS_KEY: TEST_WEBHOOK_SECRETS_KEY,
      LOG_LEVEL: 'silent',
    });
    expect(config.webhooks.allowPrivate).toBe(false);
    const app = buildServer({ ...stack.deps, config });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = app.server.address() as { port: number };
      const manager = await insertApiKey(stack.db, 'webhooks test', ['webhooks:manage']);
      const reader = await insertApiKey(stack.db, 'webhooks test', ['bills:read', 'bills:write']);
      const post = (key: string, url: string) =>
        fetch(`http://127.0.0.1:${port}/webhooks`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ url, events: ['*'] }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

      const before = await tableCounts(stack.db);
      expect((await post(reader.key, 'https://example.com/hook')).status).toBe(403);
      expect((await post(manager.key, 'http://example.com/hook')).body.details).toMatchObject({ field: 'url' });
      for (const url of [
        'https://127.0.0.1/hook',
        'https://localhost:8443/hook',
        'https://10.1.2.3/hook',
        'https://192.168.0.10/hook',
        'https://169.254.169.254/latest/meta-data',
        'https://[::1]/hook',
        'https://[fd00:ec2::254]/hook',
        'https://[::ffff:127.0.0.1]/hook',
        'https://100.100.100.200/hook',
      ]) {
        const res = await post(manager.key, url);
        expect([url, res.status, res.body.details]).toEqual([url, 400, { field: 'url', reason: 'address_not_public' }]);
      }
      expect(await tableCounts(stack.db)).toEqual(before);
    } finally {
      await app.close();
    }
  });

  it('refuses to connect to a private address at delivery, too (a name can be re-pointed after registration)', async () => {
    // Registered while private addresses were allowed; delivered by a production worker.
    const hook = await register('/private', ['bill.renewed']);
    // Marked dispatched in its own transaction, so no relay starts it: this test runs the attempt.
    const client = await stack.db.connect();
    let deliveryId: string;
    try {
      await client.query('BEGIN');
      const event = await client.query(`SELECT webhook_emit('ping', '{}'::json, $1) AS id`, [hook.webhook_id]);
      const { rows } = await client.query('UPDATE webhook_deliveries SET dispatched_at = now() WHERE event_id = $1 RETURNING delivery_id', [
        event.rows[0].id,
      ]);
      deliveryId = rows[0].delivery_id;
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const config = loadConfig({ NODE_ENV: 'production', WEBHOOK_SECRETS_KEY: TEST_WEBHOOK_SECRETS_KEY, ...ENV });
    const result = await attemptDelivery(
      { db: stack.db, config, secrets: new SecretBox(Buffer.from(TEST_WEBHOOK_SECRETS_KEY, 'base64')), log: createLogger('silent') },
      { delivery_id: deliveryId, generation: 0, attempt: 1 },
    );
    expect(result).toMatchObject({ done: false, next_attempt: 2 });
    const [delivery] = await deliveries(hook.webhook_id);
    expect(delivery.last_error).toMatch(/127\.0\.0\.1, a loopback address/);
    expect(receiver.at('/private')).toHaveLength(0);
    await call(stack, 'DELETE', `/webhooks/${hook.webhook_id}`);
  });
});
