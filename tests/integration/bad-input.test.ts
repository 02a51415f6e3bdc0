import net from 'node:net';
import { v5 as uuidv5 } from 'uuid';
import { ANONYMOUS } from '../../core/auth';
import { seedOf } from '../../core/idempotency';
import { encodeCursor } from '../../core/validate';
import { postProcessWorkflowId } from '../../invoices/messages';
import { call, eventually, inSeconds, rowsOf, startStack, uid, type Stack } from '../helpers/stack';

const cursor = (position: unknown[]) => encodeCursor(position);

let stack: Stack;
let openBill: string;
let usdBill: string;
let closedBill: string;

beforeAll(async () => {
  stack = await startStack();
  openBill = uid();
  usdBill = uid();
  closedBill = uid();
  await call(stack, 'POST', '/bills', { bill_id: openBill, billing_period_end: inSeconds(3600) });
  await call(stack, 'POST', '/bills', { bill_id: usdBill, billing_period_end: inSeconds(3600), currency: 'USD' });
  await call(stack, 'POST', '/bills', { bill_id: closedBill, billing_period_end: inSeconds(3600) });
  await call(stack, 'POST', `/bills/${closedBill}/close`);
  // Let the asynchronous post-process of the closed bill finish (all its rows written) before
  // counting rows: it ends after the invoice is stored and its delivery recorded.
  await stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(closedBill)).result();
});
afterAll(() => stack.stop());

const item = { amount: 100, currency: 'USD', description: 'ok' };
const end = () => inSeconds(3600);

/**
 * The id a create without bill_id derives from its idempotency key (bills/bills.ts), so a refused
 * create's check covers the bill it would have made. Held to the service's own by the last test.
 */
const BILL_ID_NAMESPACE = '2d8f4b8e-3f0a-4c55-9f7e-1c9a3b6d5e21';
const billIdFrom = (key: string) => uuidv5(seedOf({ key, caller: ANONYMOUS.key_id }), BILL_ID_NAMESPACE);

/** Every bill a request to `path` with `body` and `key` could write about. */
function billsOf(path: string, body: unknown, key: string): string[] {
  const inPath = /^\/bills\/([^/?]+)/.exec(path)?.[1];
  const inBody = typeof body === 'object' && body !== null ? (body as { bill_id?: unknown }).bill_id : undefined;
  return [
    openBill,
    usdBill,
    closedBill,
    billIdFrom(key),
    ...(inPath ? [decodeURIComponent(inPath)] : []),
    ...(typeof inBody === 'string' ? [inBody] : []),
  ];
}

// [name, method, path (a function so ids resolve after set-up), body, expected status, expected code]
type Case = [string, string, () => string, unknown, number, string];
const cases: Case[] = [
  ['invalid JSON', 'POST', () => '/bills', '{"billing_period_end": ', 400, 'invalid_argument'],
  ['a JSON array body', 'POST', () => '/bills', '[]', 400, 'invalid_argument'],
  ['missing billing_period_end', 'POST', () => '/bills', {}, 400, 'invalid_argument'],
  ['period end in the past', 'POST', () => '/bills', { billing_period_end: inSeconds(-60) }, 400, 'invalid_argument'],
  ['period end without a time zone', 'POST', () => '/bills', { billing_period_end: '2031-01-01T00:00:00' }, 400, 'invalid_argument'],
  ['period end not a date', 'POST', () => '/bills', { billing_period_end: '2031-02-30T00:00:00Z' }, 400, 'invalid_argument'],
  ['period end as a number', 'POST', () => '/bills', { billing_period_end: 1893456000 }, 400, 'invalid_argument'],
  ['a bad bill id', 'POST', () => '/bills', { bill_id: 'has space', billing_period_end: end() }, 400, 'invalid_argument'],
  ['an over-long bill id', 'POST', () => '/bills', { bill_id: 'x'.repeat(65), billing_period_end: end() }, 400, 'invalid_argument'],
  ['an unknown policy', 'POST', () => '/bills', { policy: 'monthly', billing_period_end: end() }, 400, 'invalid_argument'],
  ['an unknown bill currency', 'POST', () => '/bills', { currency: 'ABC', billing_period_end: end() }, 400, 'invalid_argument'],
  ['a bad email', 'POST', () => '/bills', { customer_email: 'nope', billing_period_end: end() }, 400, 'invalid_argument'],
  [
    'an over-long description',
    'POST',
    () => '/bills',
    { description: 'd'.repeat(501), billing_period_end: end() },
    400,
    'invalid_argument',
  ],
  ['zero amount', 'POST', () => `/bills/${openBill}/line-items`, { ...item, amount: 0 }, 400, 'invalid_argument'],
  ['negative amount', 'POST', () => `/bills/${openBill}/line-items`, { ...item, amount: -5 }, 400, 'invalid_argument'],
  ['fractional amount', 'POST', () => `/bills/${openBill}/line-items`, { ...item, amount: 1.5 }, 400, 'invalid_argument'],
  ['unsafe amount', 'POST', () => `/bills/${openBill}/line-items`, { ...item, amount: 2 ** 53 }, 400, 'invalid_argument'],
  ['amount as a string', 'POST', () => `/bills/${openBill}/line-items`, { ...item, amount: '100' }, 400, 'invalid_argument'],
  ['missing amount', 'POST', () => `/bills/${openBill}/line-items`, { currency: 'USD', description: 'x' }, 400, 'invalid_argument'],
  ['lower-case currency', 'POST', () => `/bills/${openBill}/line-items`, { ...item, currency: 'usd' }, 400, 'invalid_argument'],
  ['unknown currency', 'POST', () => `/bills/${openBill}/line-items`, { ...item, currency: 'XYZ' }, 400, 'invalid_argument'],
  ['a non-currency ISO code', 'POST', () => `/bills/${openBill}/line-items`, { ...item, currency: 'XAU' }, 400, 'invalid_argument'],
  ['missing description', 'POST', () => `/bills/${openBill}/line-items`, { amount: 1, currency: 'USD' }, 400, 'invalid_argument'],
  ['blank description', 'POST', () => `/bills/${openBill}/line-items`, { ...item, description: '   ' }, 400, 'invalid_argument'],
  [
    'over-long description',
    'POST',
    () => `/bills/${openBill}/line-items`,
    { ...item, description: 'é'.repeat(501) },
    400,
    'invalid_argument',
  ],
  [
    'a NUL character in a description',
    'POST',
    () => `/bills/${openBill}/line-items`,
    '{"amount":1,"currency":"USD","description":"a\\u0000b"}',
    400,
    'invalid_argument',
  ],
  [
    'an unpaired surrogate in a description',
    'POST',
    () => `/bills/${openBill}/line-items`,
    '{"amount":1,"currency":"USD","description":"a\\ud800"}',
    400,
    'invalid_argument',
  ],
  [
    'an unpaired surrogate in metadata',
    'POST',
    () => `/bills/${openBill}/line-items`,
    '{"amount":1,"currency":"USD","description":"x","metadata":{"k":"\\udc00"}}',
    400,
    'invalid_argument',
  ],
  [
    'a NUL character in a metadata key',
    'POST',
    () => `/bills/${openBill}/line-items`,
    '{"amount":1,"currency":"USD","description":"x","metadata":{"\\u0000":1}}',
    400,
    'invalid_argument',
  ],
  ['metadata as an array', 'POST', () => `/bills/${openBill}/line-items`, { ...item, metadata: [1] }, 400, 'invalid_argument'],
  [
    'metadata over 4 KB',
    'POST',
    () => `/bills/${openBill}/line-items`,
    { ...item, metadata: { x: 'y'.repeat(4100) } },
    400,
    'invalid_argument',
  ],
  [
    'a currency the bill does not allow',
    'POST',
    () => `/bills/${usdBill}/line-items`,
    { ...item, currency: 'GEL' },
    400,
    'failed_precondition',
  ],
  ['an unknown bill', 'POST', () => `/bills/${uid()}/line-items`, item, 404, 'not_found'],
  ['a closed bill', 'POST', () => `/bills/${closedBill}/line-items`, item, 400, 'failed_precondition'],
  ['a bad bill id in the path', 'POST', () => '/bills/bad%20id/line-items', item, 400, 'invalid_argument'],
  ['closing an unknown bill', 'POST', () => `/bills/${uid()}/close`, undefined, 404, 'not_found'],
  ['getting an unknown bill', 'GET', () => `/bills/${uid()}`, undefined, 404, 'not_found'],
  ['listing items of an unknown bill', 'GET', () => `/bills/${uid()}/line-items`, undefined, 404, 'not_found'],
  ['a bad status filter', 'GET', () => '/bills?status=pending', undefined, 400, 'invalid_argument'],
  ['limit 0', 'GET', () => '/bills?limit=0', undefined, 400, 'invalid_argument'],
  ['limit 101', 'GET', () => '/bills?limit=101', undefined, 400, 'invalid_argument'],
  ['limit not a number', 'GET', () => '/bills?limit=ten', undefined, 400, 'invalid_argument'],
  ['a forged cursor', 'GET', () => '/bills?cursor=bm9wZQ', undefined, 400, 'invalid_argument'],
  // Well-formed cursors holding what the service never writes there.
  [
    'a line-item cursor past bigint',
    'GET',
    () => `/bills/${openBill}/line-items?cursor=${cursor(['9999999999999999999'])}`,
    undefined,
    400,
    'invalid_argument',
  ],
  [
    'a line-item cursor with a leading zero',
    'GET',
    () => `/bills/${openBill}/line-items?cursor=${cursor(['007'])}`,
    undefined,
    400,
    'invalid_argument',
  ],
  ['a bill cursor holding a year', 'GET', () => `/bills?cursor=${cursor(['2024', 'b-1'])}`, undefined, 400, 'invalid_argument'],
  [
    'a bill cursor holding an ISO week date',
    'GET',
    () => `/bills?cursor=${cursor(['2024-W01-1', 'b-1'])}`,
    undefined,
    400,
    'invalid_argument',
  ],
  [
    'a bill cursor holding a date that does not exist',
    'GET',
    () => `/bills?cursor=${cursor(['2024-02-30T00:00:00.000Z', 'b-1'])}`,
    undefined,
    400,
    'invalid_argument',
  ],
  [
    'a bill cursor with a NUL in its id',
    'GET',
    () => `/bills?cursor=${cursor([new Date().toISOString(), 'a\u0000b'])}`,
    undefined,
    400,
    'invalid_argument',
  ],
  ['line item limit 1001', 'GET', () => `/bills/${openBill}/line-items?limit=1001`, undefined, 400, 'invalid_argument'],
  ['an unknown endpoint', 'GET', () => '/invoices', undefined, 404, 'not_found'],
];

describe('bad input', () => {
  it.each(cases)('rejects %s with a clear 4xx and writes nothing', async (_name, method, path, body, status, code) => {
    const url = path();
    const key = uid('key');
    const scope = { bills: billsOf(url, body, key), keys: [key] };
    const before = await rowsOf(stack.db, scope);
    const reply = await call(stack, method, url, body, { 'X-Idempotency-Key': key });
    expect(reply.status).toBe(status);
    expect(Object.keys(reply.body).sort()).toEqual(['code', 'details', 'message']);
    expect(reply.body.code).toBe(code);
    expect(reply.body.details === null || typeof reply.body.details === 'object').toBe(true);
    expect(reply.body.message.length).toBeGreaterThan(3);
    expect(await rowsOf(stack.db, scope)).toEqual(before);
  });

  it('scopes those checks to the bill a create would make: the id it derives from its key', async () => {
    const key = uid('key');
    const created = await call(stack, 'POST', '/bills', { billing_period_end: end() }, { 'X-Idempotency-Key': key });
    expect(created).toMatchObject({ status: 200, body: { bill_id: billIdFrom(key) } });
  });

  it('names the offending field in the details', async () => {
    const reply = await call(stack, 'POST', `/bills/${openBill}/line-items`, { ...item, amount: 0 });
    expect(reply.body.details).toEqual({ field: 'amount', reason: expect.stringContaining('positive integer') });
  });
});

describe('bytes after a request that do not parse', () => {
  /** Writes `raw` on a connection of its own and returns everything the server sent before closing it. */
  function raw(text: string): Promise<string> {
    const { port } = new URL(stack.url);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.end(text));
      let got = '';
      socket.on('data', (d) => (got += d.toString('latin1')));
      socket.on('close', () => resolve(got));
      socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(got) : reject(err)));
    });
  }

  it('never get a 400 ahead of the answer to the request before them: the connection closes instead', async () => {
    // A DELETE whose body was sent without a length (as Node's own client sends one): the body is
    // the start of a "next request" that does not parse, while the DELETE is being carried out.
    const hook = (await call(stack, 'POST', '/webhooks', { url: 'http://127.0.0.1:9/h', events: ['bill.renewed'] })).body;
    const got = await raw(
      `DELETE /webhooks/${hook.webhook_id} HTTP/1.1\r\nHost: x\r\nIdempotency-Key: raw-delete\r\n\r\n{"why":"no length"}`,
    );
    expect(got).not.toMatch(/^HTTP\/1\.1 400/);
    // It was carried out; its retry with the key gets the answer it missed.
    await eventually(
      async () => (await stack.db.query('SELECT 1 FROM webhook_endpoints WHERE webhook_id = $1', [hook.webhook_id])).rowCount === 0,
    );
    const retried = await call(stack, 'DELETE', `/webhooks/${hook.webhook_id}`, undefined, { 'idempotency-key': 'raw-delete' });
    expect(retried).toMatchObject({ status: 200, body: { webhook_id: hook.webhook_id, deleted: true } });
  });

  it('alone on a connection still get the Encore error body', async () => {
    const got = await raw('NOT-A-METHOD / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(got).toMatch(/^HTTP\/1\.1 400/);
    expect(got).toContain('"code":"invalid_argument"');
  });
});
