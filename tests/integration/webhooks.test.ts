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
import { pruneEvents } from '../../webhooks/relay';
import { SecretBox } from '../../webhooks/secrets';
import {
  TEST_WEBHOOK_SECRETS_KEY,
  call,
  eventually,
  inSeconds,
  logSink,
  rowsOf,
  startCrashingWorker,
  startStack,
  uid,
  withApiHost,
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

/** A test ping to the endpoint; resolves with the request its receiver got. */
async function ping(webhookId: string, path: string) {
  const sent = await call(stack, 'POST', `/webhooks/${webhookId}/test`);
  expect(sent.status).toBe(200);
  return eventually(async () => receiver.at(path).find((r) => r.id === sent.body.event.id));
}

/** Every page of a listing at `limit` rows a page, in the order it answered. */
async function walk(path: string, key: 'deliveries' | 'webhooks', id: 'delivery_id' | 'webhook_id', limit: number): Promise<string[]> {
  const seen: string[] = [];
  for (let cursor = ''; ;) {
    const page = (await call(stack, 'GET', `${path}?limit=${limit}${cursor}`)).body;
    seen.push(...page[key].map((row: Record<string, string>) => row[id]));
    if (!page.next_cursor) return seen;
    cursor = `&cursor=${page.next_cursor}`;
  }
}

/** The documented order of a listing: newest first, and by id (descending) within one millisecond. */
const newestFirst = (rows: { id: string; created_at: Date }[]) =>
  [...rows].sort((a, b) => b.created_at.getTime() - a.created_at.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)).map((r) => r.id);

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
    expect(
      (await call(stack, 'POST', `/bills/${failing.bill_id}/line-items`, { amount: 500, currency: 'EUR', description: 'calls' })).status,
    ).toBe(200);
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
      // Every invoice is finalized; the series' bills closed with nothing on them get none (and so
      // no invoice.finalized and no invoice.paid).
      ...[paid.bill_id, failing.bill_id].map((b) => ['invoice.finalized', b]),
    ].map(([type, bill]) => `${type} ${bill}`);
    const seen = (path: string) =>
      receiver
        .at(path)
        .filter((r) => mine.has(r.event.data.bill_id))
        .map((r) => `${r.event.type} ${r.event.data.bill_id}`);
    await eventually(async () => expected.every((e) => seen('/all').includes(e)) && seen('/closes').length >= 4, 60_000);
    // Every delivery of these bills' events to the two endpoints is settled, so nothing of theirs
    // is still on its way: an event beyond those expected would be a delivery of its own, a
    // doubled arrival an attempt beyond the first.
    const settled = await eventually(async () => {
      const { rows } = await stack.db.query<{ event: string; status: string; attempts: number }>(
        `SELECT e.type || ' ' || (e.payload->'data'->>'bill_id') AS event, d.status, d.attempts
           FROM webhook_deliveries d JOIN webhook_events e USING (event_id)
          WHERE d.webhook_id = ANY($1) AND e.payload->'data'->>'bill_id' = ANY($2)`,
        [[all.webhook_id, closes.webhook_id], [...mine]],
      );
      return rows.every((r) => r.status !== 'pending') && rows;
    });
    const expectedClosed = expected.filter((e) => e.startsWith('bill.closed'));
    expect(settled.map((r) => r.event).sort()).toEqual([...expected, ...expectedClosed].sort());
    expect(settled.filter((r) => r.status !== 'succeeded' || r.attempts !== 1)).toEqual([]);
    expect(seen('/all').sort()).toEqual([...expected].sort());
    expect(seen('/closes').sort()).toEqual(expectedClosed.sort());

    for (const r of [...receiver.at('/all'), ...receiver.at('/closes')]) {
      expect(r.verifiedWith).toHaveLength(1);
      expect(r.id).toBe(r.event.id);
      // { id, type, created_at, actor, data } in that order, compact, as a receiver would log it.
      expect(Object.keys(r.event)).toEqual(['id', 'type', 'created_at', 'actor', 'data']);
      // Who made the change: the caller (authentication is off here) or the service itself.
      // A series' renewal (the next bill's creation) and a close at the period's end are the service's.
      const of = (type: string, bill: string) => r.event.type === type && r.event.data.bill_id === bill;
      const byService =
        r.event.type.startsWith('invoice.') ||
        r.event.type === 'bill.renewed' ||
        of('bill.created', next!) ||
        of('bill.closed', series.bill_id);
      expect([r.event.type, (r.event as { actor?: string }).actor]).toEqual([r.event.type, byService ? 'system' : 'anonymous']);
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

  it('a close whose transaction fails records no bill.closed; once it succeeds, exactly one', async () => {
    const bill = await openBill();
    const closedEvents = async () =>
      (
        await stack.db.query(
          `SELECT count(*)::int AS n FROM webhook_events WHERE type = 'bill.closed' AND payload->'data'->>'bill_id' = $1`,
          [bill.bill_id],
        )
      ).rows[0].n as number;
    // The fault: the commit of this bill's close fails, after the close has written everything
    // (its event too). It sits on the bill's row, not on the event's, so that an event written
    // outside the close's transaction would survive it. Each firing counts in a sequence, which a
    // rollback does not undo.
    const fault = `close_fault_${bill.bill_id.replace(/\W/g, '_')}`;
    await stack.db.query(`CREATE SEQUENCE ${fault}_hits`);
    await stack.db.query(
      `CREATE FUNCTION ${fault}() RETURNS trigger AS $$
       BEGIN PERFORM nextval('${fault}_hits'); RAISE EXCEPTION 'injected fault: the close of % cannot commit', NEW.bill_id; END
       $$ LANGUAGE plpgsql`,
    );
    await stack.db.query(
      `CREATE CONSTRAINT TRIGGER ${fault} AFTER UPDATE ON bills DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
       WHEN (NEW.bill_id = '${bill.bill_id}' AND NEW.status = 'closed') EXECUTE FUNCTION ${fault}()`,
    );
    const hits = async () =>
      (await stack.db.query(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM ${fault}_hits`)).rows[0].n;
    let closing: Promise<unknown> | undefined;
    try {
      closing = call(stack, 'POST', `/bills/${bill.bill_id}/close`);
      // The close ran and rolled back, then its retry did too.
      await eventually(async () => Number(await hits()) >= 2);
      expect((await stack.db.query('SELECT status FROM bills WHERE bill_id = $1', [bill.bill_id])).rows[0].status).toBe('open');
      expect(await closedEvents()).toBe(0);
    } finally {
      await stack.db.query(`DROP TRIGGER ${fault} ON bills; DROP FUNCTION ${fault}(); DROP SEQUENCE ${fault}_hits`);
    }
    // The fault gone, the close's next retry commits: the bill closed, with one event.
    expect(await closing).toMatchObject({ status: 200, body: { bill: { status: 'closed' } } });
    expect(await closedEvents()).toBe(1);
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
    // Recorded as delivered: its workflow has ended, so no attempt is left to arrive.
    const delivery = await eventually(async () => {
      const [d] = await deliveries(hook.webhook_id);
      return d?.status !== 'pending' && d;
    }, 30_000);
    expect(delivery).toMatchObject({ status: 'succeeded', attempts: 4, last_status_code: 200, last_response_body: 'ok' });
    const got = receiver.at('/flaky').filter((x) => x.event.data.bill_id === bill.bill_id);
    expect(got.map((r) => r.answered)).toEqual([500, 500, 500, 200]);
    expect(new Set(got.map((r) => r.id)).size).toBe(1);
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    expect(got.every((r) => r.verifiedWith.length === 1)).toBe(true);
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
    // Recorded as delivered (after the receiver's answer came back): nothing of it is on its way.
    const delivery = await eventually(async () => {
      const [d] = await deliveries(hook.webhook_id);
      return d?.status !== 'pending' && d;
    }, 40_000);
    expect(delivery.status).toBe('succeeded');
    const all = receiver.at('/slow').filter((x) => x.event.data.bill_id === bill!.bill_id);
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(all.at(-1)!.answered).toBe(200);
    expect(new Set(all.map((r) => r.id))).toEqual(new Set([delivery.event.id]));
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

  it('a second rotation within the overlap signs with the newest secret and the one before it, no longer the first', async () => {
    const hook = await register('/rotated-twice', ['bill.renewed']);
    const second = await call(stack, 'POST', `/webhooks/${hook.webhook_id}/rotate-secret`);
    const third = await call(stack, 'POST', `/webhooks/${hook.webhook_id}/rotate-secret`);
    expect([second.status, third.status]).toEqual([200, 200]);
    // The receiver knows all three: which of them verify is what was signed with.
    receiver.route('/rotated-twice', [hook.secret, second.body.secret, third.body.secret]);

    const got = await ping(hook.webhook_id, '/rotated-twice');
    expect(got.verifiedWith.sort()).toEqual([second.body.secret, third.body.secret].sort());
    expect(got.signature.split(' ')).toHaveLength(2);
    // The one before signs for a full overlap from the second rotation.
    expect(Date.parse(third.body.previous_secret_expires_at)).toBeGreaterThan(Date.parse(second.body.previous_secret_expires_at));
  });

  it('with an overlap of zero, a rotation signs with the new secret alone at once', async () => {
    const hook = await register('/no-overlap', ['bill.renewed']);
    const rotated = await withApiHost(stack, { WEBHOOK_SECRET_OVERLAP_MS: '0' }, (host) =>
      call(host, 'POST', `/webhooks/${hook.webhook_id}/rotate-secret`),
    );
    expect(rotated.status).toBe(200);
    expect(rotated.body.previous_secret_expires_at).toBeNull();
    receiver.route('/no-overlap', [hook.secret, rotated.body.secret]);

    const got = await ping(hook.webhook_id, '/no-overlap');
    expect(got.verifiedWith).toEqual([rotated.body.secret]);
    expect(got.signature.split(' ')).toHaveLength(1);
  });

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
    // Its pending deliveries were cancelled with it (a ping that raced the disabling is cancelled
    // by its own first attempt), so nothing more can be claimed and sent; attempts claimed before
    // it was disabled may still be on their way: the receiver ends up with exactly those.
    await eventually(async () => !(await deliveries(broken.webhook_id)).some((d) => d.status === 'pending'));
    expect(pings).toBeGreaterThan(0);
    expect((await deliveries(broken.webhook_id)).some((d) => d.event.id && d.status === 'cancelled')).toBe(true);
    const claimed = async () =>
      (await stack.db.query('SELECT sum(attempts)::int AS n FROM webhook_deliveries WHERE webhook_id = $1', [broken.webhook_id])).rows[0].n;
    const cutOff = await eventually(async () => receiver.at('/broken').length === (await claimed()) && receiver.at('/broken').length);

    // A bill's event, seen arriving at an enabled endpoint: the disabled ones got no delivery of it.
    const control = await register('/control', ['bill.created']);
    const after = await openBill();
    const arrived = await eventually(async () => receiver.at('/control').find((r) => r.event.data.bill_id === after.bill_id));
    const { rows } = await stack.db.query('SELECT webhook_id FROM webhook_deliveries WHERE event_id = $1', [arrived.id]);
    const these = [control.webhook_id, broken.webhook_id, off.webhook_id];
    expect(rows.map((r) => r.webhook_id).filter((id) => these.includes(id))).toEqual([control.webhook_id]);
    expect(receiver.at('/broken')).toHaveLength(cutOff);
    expect(receiver.at('/off')).toHaveLength(0);
    expect(await deliveries(off.webhook_id)).toHaveLength(0);

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
    // Recorded once the receiver's answer came back, so waited for rather than read at once.
    const done = await eventually(async () => {
      const d = (await deliveries(broken.webhook_id)).find((x) => x.delivery_id === last.delivery_id);
      return d?.status !== 'pending' && d;
    }, 20_000);
    expect(done.status).toBe('succeeded');
    expect(receiver.at('/broken').some((r) => r.id === last.event.id && r.answered === 200)).toBe(true);
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
    // An endpoint of its own to change, and a key on every request: failed requests are not remembered.
    const target = await register('/bad-input', ['bill.renewed']);
    const urls = [receiver.url('/bad-input'), 'ftp://example.com/x', 'https://user:pw@example.com/x', 'https://example.com/x'];
    const refused: [string, string, unknown, number, string, string?][] = [
      ['POST', '/webhooks', { events: ['*'] }, 400, 'invalid_argument', 'url'],
      ['POST', '/webhooks', { url: urls[1], events: ['*'] }, 400, 'invalid_argument', 'url'],
      ['POST', '/webhooks', { url: urls[2], events: ['*'] }, 400, 'invalid_argument', 'url'],
      ['POST', '/webhooks', { url: urls[3], events: [] }, 400, 'invalid_argument', 'events'],
      ['POST', '/webhooks', { url: urls[3], events: ['bill.deleted'] }, 400, 'invalid_argument', 'events'],
      ['POST', '/webhooks', { url: urls[3], events: ['*', 'bill.closed'] }, 400, 'invalid_argument', 'events'],
      ['POST', '/webhooks', { url: urls[3], events: ['*'], secret: 'mine' }, 400, 'invalid_argument', 'secret'],
      ['PATCH', `/webhooks/${target.webhook_id}`, {}, 400, 'invalid_argument', 'body'],
      ['PATCH', `/webhooks/${target.webhook_id}`, { enabled: 'yes' }, 400, 'invalid_argument', 'enabled'],
      ['GET', `/webhooks/${target.webhook_id}/deliveries?status=lost`, undefined, 400, 'invalid_argument', 'status'],
      ['POST', `/webhooks/${target.webhook_id}/deliveries/not-a-uuid/retry`, undefined, 400, 'invalid_argument', 'deliveryId'],
      ['GET', '/webhooks/nope', undefined, 404, 'not_found'],
      ['PATCH', '/webhooks/nope', { enabled: true }, 404, 'not_found'],
      ['DELETE', '/webhooks/nope', undefined, 404, 'not_found'],
      ['POST', '/webhooks/nope/test', undefined, 404, 'not_found'],
    ];
    const keys = refused.map(() => uid('key'));
    const before = await rowsOf(stack.db, { webhookUrls: urls, keys });
    for (const [i, [method, path, body, status, code, field]] of refused.entries()) {
      const res = await call(stack, method, path, body, { 'idempotency-key': keys[i] });
      expect([method, path, res.status, res.body.code, res.body.details?.field]).toEqual([method, path, status, code, field]);
    }
    expect(await rowsOf(stack.db, { webhookUrls: urls, keys })).toEqual(before);
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

  it('pages deliveries and webhooks newest first, then by id, each row once, when several share a millisecond', async () => {
    const hook = await register('/paged', ['bill.renewed']);
    const pings: string[] = [];
    for (let i = 0; i < 6; i++) pings.push((await call(stack, 'POST', `/webhooks/${hook.webhook_id}/test`)).body.delivery_id);
    // Made one after another, rows never share a millisecond; a burst of events does. Four of
    // them now share one (the newest), so every page size below splits the tie.
    await stack.db.query(`UPDATE webhook_deliveries SET created_at = date_trunc('milliseconds', now()) WHERE delivery_id = ANY($1)`, [
      pings.slice(1, 5),
    ]);
    const stored = await stack.db.query('SELECT delivery_id AS id, created_at FROM webhook_deliveries WHERE webhook_id = $1', [
      hook.webhook_id,
    ]);
    for (const limit of [1, 2, 3]) {
      const listed = await walk(`/webhooks/${hook.webhook_id}/deliveries`, 'deliveries', 'delivery_id', limit);
      expect({ limit, listed }).toEqual({ limit, listed: newestFirst(stored.rows) });
    }
    const forged = Buffer.from(JSON.stringify([new Date().toISOString(), 'not-a-uuid'])).toString('base64url');
    const refused = await call(stack, 'GET', `/webhooks/${hook.webhook_id}/deliveries?cursor=${forged}`);
    expect([refused.status, refused.body.details?.field]).toEqual([400, 'cursor']);

    // Endpoints, likewise: three registered now share the newest millisecond.
    const tied = [];
    for (const path of ['/paged-a', '/paged-b', '/paged-c']) tied.push((await register(path, ['bill.renewed'])).webhook_id);
    await stack.db.query(`UPDATE webhook_endpoints SET created_at = date_trunc('milliseconds', now()) WHERE webhook_id = ANY($1)`, [tied]);
    const endpoints = await stack.db.query('SELECT webhook_id AS id, created_at FROM webhook_endpoints');
    for (const limit of [1, 2]) {
      const listed = await walk('/webhooks', 'webhooks', 'webhook_id', limit);
      expect({ limit, listed }).toEqual({ limit, listed: newestFirst(endpoints.rows) });
    }
  });

  it('prunes events past their retention with their deliveries, unless a delivery is still pending', async () => {
    const ok = await register('/prune-ok', ['bill.created']);
    const down = await register('/prune-down', ['bill.created'], () => 503);
    // Old and delivered: pruned. Old, delivered to one endpoint and still pending for another: kept.
    // Delivered but recent: kept.
    const oldDelivered = await ping(ok.webhook_id, '/prune-ok');
    const bill = await openBill();
    const oldPending = await eventually(async () => receiver.at('/prune-ok').find((r) => r.event.data.bill_id === bill.bill_id));
    const recent = await ping(ok.webhook_id, '/prune-ok');
    const deliveriesOf = async (eventId: string) =>
      (await stack.db.query('SELECT webhook_id, status FROM webhook_deliveries WHERE event_id = $1 ORDER BY webhook_id', [eventId])).rows;
    await eventually(async () => (await deliveriesOf(oldDelivered.id)).every((d) => d.status === 'succeeded'));
    await eventually(async () => (await deliveriesOf(oldPending.id)).find((d) => d.webhook_id === ok.webhook_id)?.status === 'succeeded');
    // The bill's event went to every endpoint taking bill.created; the one to prune-down is pending.
    const kept = (await deliveriesOf(oldPending.id)).map((d) => d.webhook_id);
    expect((await deliveriesOf(oldPending.id)).find((d) => d.webhook_id === down.webhook_id)).toMatchObject({ status: 'pending' });
    const days = stack.config.webhooks.eventRetentionDays;
    await stack.db.query(
      `UPDATE webhook_events SET created_at = created_at - $2 * interval '1 day' - interval '1 hour' WHERE event_id = ANY($1)`,
      [[oldDelivered.id, oldPending.id], days],
    );

    expect(await pruneEvents(stack.db, days)).toBe(1);
    const events = await stack.db.query('SELECT event_id FROM webhook_events WHERE event_id = ANY($1)', [
      [oldDelivered.id, oldPending.id, recent.id],
    ]);
    expect(events.rows.map((r) => r.event_id).sort()).toEqual([oldPending.id, recent.id].sort());
    expect(await deliveriesOf(oldDelivered.id)).toEqual([]);
    expect((await deliveriesOf(oldPending.id)).map((d) => d.webhook_id)).toEqual(kept);
    const listed = (await deliveries(ok.webhook_id)).map((d) => d.event.id);
    expect(listed).not.toContain(oldDelivered.id);
    expect(listed).toEqual(expect.arrayContaining([oldPending.id, recent.id]));
    // Its receiver is gone: its delivery would go on failing.
    await call(stack, 'DELETE', `/webhooks/${down.webhook_id}`);
  });
});

describe('production mode', () => {
  it('refuses receivers on private addresses and needs the webhooks:manage scope', async () => {
    const config = loadConfig({
      ...process.env,
      NODE_ENV: 'production',
      SELLER_NAME: 'Example GmbH',
      SELLER_ADDRESS_LINE1: 'Hauptstraße 5',
      SELLER_CITY: 'München',
      SELLER_POSTAL_CODE: '80331',
      SELLER_COUNTRY: 'DE',
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
      const privateUrls = [
        'https://127.0.0.1/hook',
        'https://localhost:8443/hook',
        'https://10.1.2.3/hook',
        'https://192.168.0.10/hook',
        'https://169.254.169.254/latest/meta-data',
        'https://[::1]/hook',
        'https://[fd00:ec2::254]/hook',
        'https://[::ffff:127.0.0.1]/hook',
        'https://100.100.100.200/hook',
      ];
      // Each request under an idempotency key of its own: a refused one leaves no answer behind either.
      const keys = Array.from({ length: 2 + privateUrls.length }, () => uid('key'));
      const post = (apiKey: string, url: string) =>
        fetch(`http://127.0.0.1:${port}/webhooks`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': keys.pop()! },
          body: JSON.stringify({ url, events: ['*'] }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
      // As sent and as it would be stored (https://[::ffff:7f00:1]/hook, say).
      const sent = ['https://example.com/hook', 'http://example.com/hook', ...privateUrls];
      const scope = { webhookUrls: [...sent, ...sent.map((u) => new URL(u).href)], keys: [...keys] };
      const before = await rowsOf(stack.db, scope);

      expect((await post(reader.key, 'https://example.com/hook')).status).toBe(403);
      expect((await post(manager.key, 'http://example.com/hook')).body.details).toMatchObject({ field: 'url' });
      for (const url of privateUrls) {
        const res = await post(manager.key, url);
        expect([url, res.status, res.body.details]).toEqual([url, 400, { field: 'url', reason: 'address_not_public' }]);
      }
      expect(await rowsOf(stack.db, scope)).toEqual(before);
    } finally {
      await app.close();
    }
  });
});
