/**
 * What an operator sees: request ids, bill ids on every log line of a request, redacted secrets,
 * Prometheus metrics, and the health and readiness probes against the real dependencies.
 */
import { createLogger } from '../../core/log';
import { buildServer } from '../../host/server';
import { runLogStream } from '../helpers/run-logs';
import { call, inSeconds, logSink, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
const sink = logSink();

beforeAll(async () => {
  stack = await startStack({}, undefined, { logStream: sink.stream });
});
afterAll(() => stack.stop());

/**
 * Bills this file has open, from its own requests: the file has a database of its own, so the
 * open-bill gauge must count exactly these.
 */
const openBills = new Set<string>();
async function openBill(): Promise<string> {
  const billId = uid();
  expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) })).status).toBe(200);
  openBills.add(billId);
  return billId;
}
async function closeBill(billId: string): Promise<void> {
  expect((await call(stack, 'POST', `/bills/${billId}/close`)).status).toBe(200);
  openBills.delete(billId);
}

const metricValue = (text: string, name: string, labels = '') => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
};

describe('logs', () => {
  it("carry the request id (a caller's X-Request-Id is kept) and the bill id on every line of a request", async () => {
    const billId = await openBill();
    const reply = await call(stack, 'GET', `/bills/${billId}`, undefined, { 'x-request-id': 'trace-abc.1' });
    expect(reply.headers.get('x-request-id')).toBe('trace-abc.1');
    const generated = await call(stack, 'GET', `/bills/${billId}`);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const lines = sink.lines.filter((l) => l.request_id === 'trace-abc.1');
    expect(lines.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
    for (const line of lines) expect(line).toMatchObject({ bill_id: billId, service: 'fees-api', component: 'api' });
  });

  it('redact secrets that could ride along in a logged object', () => {
    const out = logSink();
    createLogger('info', {}, out.stream).info(
      { authorization: 'Bearer fees_secret', smtp: { url: 'smtp://u:hunter2@h' }, headers: { authorization: 'x' }, password: 'p' },
      'configured',
    );
    expect(JSON.stringify(out.lines)).not.toMatch(/hunter2|fees_secret|"p"/);
    expect(out.lines[0]).toMatchObject({ authorization: '[Redacted]', smtp: { url: '[Redacted]' } });
  });
});

describe('metrics', () => {
  it('count requests by route and status, line items by result and reason, bills, replays and open bills', async () => {
    const before = (await call(stack, 'GET', '/metrics')).body as string;
    const billId = await openBill();
    // Two more open bills, so the gauge has a number of its own to reach (not the 0 or 1 of a fresh file).
    await openBill();
    await openBill();
    const item = { amount: 5, currency: 'USD', description: 'x' };
    await call(stack, 'POST', `/bills/${billId}/line-items`, item, { 'Idempotency-Key': `${billId}-1` });
    await call(stack, 'POST', `/bills/${billId}/line-items`, item, { 'Idempotency-Key': `${billId}-1` }); // replay
    await call(stack, 'POST', `/bills/${billId}/line-items`, { ...item, amount: 0 });
    await closeBill(billId);

    const res = await call(stack, 'GET', '/metrics');
    expect(res.headers.get('content-type')).toContain('text/plain');
    const after = res.body as string;
    const delta = (name: string, labels = '') => (metricValue(after, name, labels) ?? 0) - (metricValue(before, name, labels) ?? 0);
    expect(delta('fees_line_items_total', 'result="accepted",reason=""')).toBe(2);
    expect(delta('fees_line_items_total', 'result="rejected",reason="invalid_argument:amount"')).toBe(1);
    expect(delta('fees_idempotent_replays_total')).toBe(1);
    expect(delta('fees_bills_opened_total')).toBe(3);
    expect(delta('fees_bills_closed_total')).toBe(1);
    expect(after).toMatch(
      /fees_http_request_duration_seconds_count\{method="POST",route="\/bills\/:billId\/line-items",status="400"\} \d+/,
    );
    expect(after).toMatch(/fees_http_request_duration_seconds_bucket\{le="0\.1",method="GET",route="\/metrics",status="200"\} \d+/);
    // The bills this file opened and has not closed (the closed one is not among them).
    expect(openBills.size).toBeGreaterThanOrEqual(2);
    expect(metricValue(after, 'fees_open_bills')).toBe(openBills.size);
    for (const name of [
      'fees_totals_fallbacks_total',
      'fees_invoice_failures_total',
      'fees_process_resident_memory_bytes',
      'fees_nodejs_eventloop_lag_seconds',
    ]) {
      expect(after).toContain(`# TYPE ${name}`);
    }
  });
});

describe('probes', () => {
  it('/healthz says the process is up; /readyz checks Postgres, Temporal and a polling worker', async () => {
    expect(await call(stack, 'GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await call(stack, 'GET', '/readyz')).toMatchObject({
      status: 200,
      body: { status: 'ready', checks: { postgres: 'ok', temporal: 'ok', worker: 'ok' } },
    });
  });

  it('/readyz answers 503 with the failing check when no worker polls the task queue', async () => {
    const config = { ...stack.config, temporal: { ...stack.config.temporal, taskQueue: `nobody-${uid()}` } };
    const app = buildServer({ ...stack.deps, config }, { logLevel: 'silent', logStream: runLogStream('service') });
    try {
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({
        code: 'unavailable',
        message: 'not ready: worker',
        details: { checks: { postgres: 'ok', temporal: 'ok', worker: expect.stringContaining('no worker polls') } },
      });
    } finally {
      await app.close();
    }
  });
});
