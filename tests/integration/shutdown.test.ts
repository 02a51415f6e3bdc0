/**
 * SIGTERM under load: the HTTP server stops taking requests and finishes those in flight, the
 * worker finishes its tasks, then the process exits 0 — and no acknowledged line item is lost.
 */
import http from 'node:http';
import { lineItemId } from '../../bills/line-item-ids';
import { ANONYMOUS } from '../../core/auth';
import { seedOf } from '../../core/idempotency';
import { call, eventually, inSeconds, liveTotals, mismatchReports, startStack, uid, type Stack } from '../helpers/stack';
import { holdToContract } from '../helpers/contract';
import { testTempDir } from '../helpers/tmp';
import { freePort } from '../helpers/ports';
import { startProcess } from '../helpers/processes';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
  await stack.stopWorker(); // the service under test runs its own worker on this task queue
});
afterAll(() => stack.stop());

/** `host/main.ts <mode>` in its own process, on the test database, Temporal and task queue. */
function runService(mode: 'all' | 'worker', env: Record<string, string>) {
  return startProcess('host/main.ts', [mode], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LOG_LEVEL: 'warn',
      ...env,
      DATABASE_URL: stack.config.databaseUrl,
      TEMPORAL_ADDRESS: stack.config.temporal.address,
      TEMPORAL_TASK_QUEUE: stack.config.temporal.taskQueue,
      DATA_DIR: testTempDir(`${mode}-`),
    },
  });
}

/**
 * One request on a connection of its own. On a reused keep-alive connection, a request written
 * just as the server closes that idle connection fails in a way no server can prevent (the client
 * retries it); a connection per request leaves refused (the server no longer listens) and reset.
 * A reset says nothing by itself: a connection the kernel had queued but the server never accepted
 * is reset when the server stops listening, and no server can prevent that either. The server's
 * own request log tells it apart from a request the drain failed to finish (below).
 */
function postOnNewConnection(url: string, body: unknown, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

it('drains on SIGTERM: every acknowledged line item is stored exactly once', async () => {
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  holdToContract(api);
  // Request logs on: every request the server took up must have its answer logged.
  const service = runService('all', { PORT: String(port), WORKER_PORT: '0', LOG_LEVEL: 'info' });
  const { child, exited, output: out } = service;
  await service.waitFor('is up');

  const billId = uid();
  const created = await fetch(`${api}/bills`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ bill_id: billId, billing_period_end: inSeconds(3600) }),
  });
  expect(created.status).toBe(200);

  // Eight clients add items one after another until the service is gone. What each add sent, by its key.
  const amounts = new Map<string, number>();
  const acknowledged: string[] = [];
  // Sent and not acknowledged (a 503, or no connection): each is retried with its key below.
  const unanswered = new Map<string, number>();
  const outcomes = new Map<string, number>();
  let stopped = false;
  const count = (outcome: string) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  const client = async (c: number) => {
    for (let i = 0; !stopped; i++) {
      const key = `${billId}-${c}-${i}`;
      amounts.set(key, 100 + c);
      try {
        const status = await postOnNewConnection(
          `${api}/bills/${billId}/line-items`,
          { amount: 100 + c, currency: 'USD', description: key },
          key,
        );
        count(String(status));
        if (status === 200) acknowledged.push(key);
        else unanswered.set(key, 100 + c);
      } catch (err) {
        // The server is gone: the only acceptable way to fail is a refused connection. A request
        // reset mid-flight would be one the drain failed to finish.
        const code = (err as { code?: string }).code ?? String(err);
        count(code === 'ECONNREFUSED' ? 'connection refused' : code === 'ECONNRESET' ? 'connection reset' : `failed: ${code}`);
        unanswered.set(key, 100 + c);
        return;
      }
    }
  };
  const clients = Promise.all(Array.from({ length: 8 }, (_, c) => client(c)));
  await eventually(async () => acknowledged.length >= 40, 30_000);
  child.kill('SIGTERM');
  const code = await exited;
  stopped = true;
  await clients;

  expect({ code, out: code === 0 ? '' : out() }).toEqual({ code: 0, out: '' });
  expect(out()).toContain('SIGTERM: shutting down');
  // In order: no new requests and in-flight ones answered, then the worker drained, then the
  // webhook relay (what the worker's last activities wrote still goes out), then the pool.
  const order = [...out().matchAll(/^stopped (.+) \(\d+ ms\)$/gm)].map((m) => m[1]);
  expect(order).toEqual(['HTTP server', 'worker', 'webhook relay', 'Temporal client', 'database pool']);
  // Only answers a client can act on: success, or 503 (retry with the same key), or no connection.
  expect([...outcomes.keys()].filter((k) => !['200', '503', 'connection refused', 'connection reset'].includes(k))).toEqual([]);
  // And no reset was a request the server had taken up: each one it logged, it answered.
  const requestLog = out()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; request_id?: string });
  const answered = new Set(requestLog.filter((l) => l.msg === 'request completed').map((l) => l.request_id));
  const taken = requestLog.filter((l) => l.msg === 'incoming request').map((l) => l.request_id);
  expect(taken.length).toBeGreaterThan(40);
  expect(taken.every((id) => typeof id === 'string')).toBe(true);
  expect(taken.filter((id) => !answered.has(id))).toEqual([]);

  const stored = await stack.db.query<{ line_item_id: string }>('SELECT line_item_id FROM line_items WHERE bill_id = $1', [billId]);
  const ids = new Set(stored.rows.map((r) => r.line_item_id));
  const lost = acknowledged.filter((key) => !ids.has(lineItemId(billId, seedOf({ key, caller: ANONYMOUS.key_id }))));
  expect(lost).toEqual([]);

  // The bill carries on with another worker. Every request left unanswered is retried with its key,
  // as a client would: each lands once. Updates the server still held are applied meanwhile.
  await stack.startWorker();
  for (const [key, amount] of unanswered) {
    const retry = await call(
      stack,
      'POST',
      `/bills/${billId}/line-items`,
      { amount, currency: 'USD', description: key },
      { 'idempotency-key': key },
    );
    expect(retry.status).toBe(200);
  }
  // Every add sent is stored exactly once, acknowledged the first time or on its retry, and
  // nothing else is (the description is the key: a second row for one key would show twice).
  const sent = [...acknowledged, ...unanswered.keys()];
  const byKey = await stack.db.query<{ description: string; n: number }>(
    'SELECT description, count(*)::int AS n FROM line_items WHERE bill_id = $1 GROUP BY description',
    [billId],
  );
  expect(byKey.rows.filter((r) => r.n !== 1)).toEqual([]);
  expect(byKey.rows.map((r) => r.description).sort()).toEqual([...sent].sort());
  // The bill adds up to what was sent, each add once, now that every one is acknowledged.
  expect(sent.length).toBe(amounts.size);
  const total = sent.reduce((sum, key) => sum + amounts.get(key)!, 0);
  const totals = [expect.objectContaining({ currency: 'USD', amount: total, line_item_count: sent.length })];
  // Updates the old process's worker had accepted may still be applied by the new one: their
  // retries were answered from the stored rows. Wait until the workflow counts them too.
  const live = await eventually(async () => {
    const bill = await liveTotals(stack, billId);
    return bill.line_item_count === sent.length && bill;
  });
  expect(live.totals).toEqual(totals);
  const closed = await call(stack, 'POST', `/bills/${billId}/close`);
  expect(closed.status).toBe(200);
  expect(closed.body.bill.totals).toEqual(totals);
  expect(await mismatchReports(stack, billId)).toBe(0);
}, 120_000);

it('runs the worker alone (npm run worker) with its own probes and metrics, and stops it on SIGTERM', async () => {
  const port = await freePort();
  const service = runService('worker', { WORKER_PORT: String(port) });
  const { child, exited } = service;
  try {
    await service.waitFor('is up');
    const probes = `http://127.0.0.1:${port}`;
    expect((await fetch(`${probes}/healthz`)).status).toBe(200);
    const ready = await fetch(`${probes}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', worker: 'ok' } });
    expect(await (await fetch(`${probes}/metrics`)).text()).toMatch(/^temporal_\w+/m);

    // It serves the bills of its task queue: the API of the test stack reaches it.
    await stack.stopWorker();
    const billId = uid();
    expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) })).status).toBe(200);
  } finally {
    child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
  expect(service.output()).toMatch(/stopped worker/);
}, 90_000);
