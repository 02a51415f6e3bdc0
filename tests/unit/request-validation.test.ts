/**
 * What the standalone host refuses, through the real server (its route schemas, built from the
 * Encore declarations, its ajv instances and its error mapping) on stub dependencies: every
 * refusal is a 400 `invalid_argument` naming the field as the API always has. The shape is checked
 * before anything else; the domain rules (tests of their own in validation.test.ts and beside)
 * then run in the use case, still before any I/O.
 */
import type { FastifyInstance } from 'fastify';
import { lineItems as lineItemsMetric } from '../../core/metrics';
import { REACHED_THE_STUB, send, stubServer } from '../helpers/stub-server';

let app: FastifyInstance;
beforeAll(() => {
  app = stubServer();
}, 60_000);
afterAll(() => app.close());

const END = '2031-01-01T00:00:00Z';
const item = { amount: 100, currency: 'USD', description: 'ok' };
const line = { amount: 5, currency: 'EUR', reason: 'r' };
const ID_REASON = 'must be 1-64 characters of A-Z, a-z, 0-9, _ . : -';
const AMOUNT_REASON = 'must be a positive integer number of minor units within the safe integer range';

// [what, method, url, body, details.field, details.reason (when it matters)]
type Case = [string, string, string, unknown, string, string?];
// Every row of the same length: jest would take a missing last argument for a `done` callback.
const rows = (cases: Case[]) =>
  cases.map(([what, method, url, body, field, reason]) => [what, method, url, body, field, reason ?? null] as const);

const shapes: Case[] = [
  // POST /bills
  ['a JSON array body', 'POST', '/bills', '[]', 'body', 'not an object'],
  ['a JSON string body', 'POST', '/bills', '"x"', 'body', 'not an object'],
  ['a bill id with a space', 'POST', '/bills', { bill_id: 'has space', billing_period_end: END }, 'bill_id', ID_REASON],
  ['an empty bill id', 'POST', '/bills', { bill_id: '', billing_period_end: END }, 'bill_id', ID_REASON],
  ['a bill id with a slash', 'POST', '/bills', { bill_id: 'a/b', billing_period_end: END }, 'bill_id'],
  ['an over-long bill id', 'POST', '/bills', { bill_id: 'x'.repeat(65), billing_period_end: END }, 'bill_id'],
  ['a number as bill id', 'POST', '/bills', { bill_id: 7, billing_period_end: END }, 'bill_id', ID_REASON],
  [
    'a period end as a number',
    'POST',
    '/bills',
    { billing_period_end: 1893456000 },
    'billing_period_end',
    'must be an RFC 3339 timestamp with a time zone, e.g. 2030-01-31T00:00:00Z',
  ],
  ['a period end without a zone', 'POST', '/bills', { billing_period_end: '2031-01-01T00:00:00' }, 'billing_period_end'],
  ['a date without a time', 'POST', '/bills', { billing_period_end: '2026-12-01' }, 'billing_period_end'],
  [
    'a currency of two letters',
    'POST',
    '/bills',
    { currency: 'US', billing_period_end: END },
    'currency',
    'must be an ISO 4217 code of three capital letters',
  ],
  [
    'an unknown policy',
    'POST',
    '/bills',
    { policy: 'weekly', billing_period_end: END },
    'policy',
    'must be one of: usage_based, recurring, monthly',
  ],
  ['a policy that is a number', 'POST', '/bills', { policy: 5 }, 'policy', 'must be one of: usage_based, recurring, monthly'],
  [
    'an email without a dot',
    'POST',
    '/bills',
    { customer_email: 'a@b', billing_period_end: END },
    'customer_email',
    'must be an email address',
  ],
  ['an email that is blank', 'POST', '/bills', { customer_email: ' ', billing_period_end: END }, 'customer_email'],
  ['a description that is a number', 'POST', '/bills', { description: 5, billing_period_end: END }, 'description', 'must be a string'],
  [
    'a description of 501 characters',
    'POST',
    '/bills',
    { description: 'd'.repeat(501), billing_period_end: END },
    'description',
    'must be at most 500 characters',
  ],
  ['a blank description', 'POST', '/bills', { description: ' \t', billing_period_end: END }, 'description', 'must not be blank'],
  [
    'an anchor day of 32',
    'POST',
    '/bills',
    { policy: 'monthly', billing_anchor_day: 32 },
    'billing_anchor_day',
    'must be an integer from 1 to 31',
  ],
  [
    'a fractional anchor day',
    'POST',
    '/bills',
    { policy: 'monthly', billing_anchor_day: 1.5 },
    'billing_anchor_day',
    'must be an integer from 1 to 31',
  ],
  [
    'a grace period that is a number',
    'POST',
    '/bills',
    { billing_period_end: END, grace_period: 5 },
    'grace_period',
    'must be an ISO 8601 duration such as P30D',
  ],
  [
    'a fractional recurring fee',
    'POST',
    '/bills',
    { policy: 'monthly', recurring_fee: { amount: 1.5, currency: 'USD', description: 'x' } },
    'recurring_fee.amount',
    AMOUNT_REASON,
  ],
  [
    'a recurring fee without a description',
    'POST',
    '/bills',
    { policy: 'monthly', recurring_fee: { amount: 1, currency: 'USD' } },
    'recurring_fee.description',
    'is required',
  ],
  // GET /bills
  ['a status filter that is none', 'GET', '/bills?status=pending', undefined, 'status', 'must be one of: open, draft, closed'],
  ['an invoice status that is none', 'GET', '/bills?invoice_status=lost', undefined, 'invoice_status'],
  ['limit 0', 'GET', '/bills?limit=0', undefined, 'limit', 'must be at least 1'],
  ['limit not a number', 'GET', '/bills?limit=ten', undefined, 'limit', 'must be an integer'],
  ['a fractional limit', 'GET', '/bills?limit=1.5', undefined, 'limit'],
  ['two limits', 'GET', '/bills?limit=1&limit=2', undefined, 'limit'],
  ['totals of neither kind', 'GET', '/bills?totals=LIVE', undefined, 'totals', 'must be one of: stored, live'],
  ['a series id with a space', 'GET', '/bills?series_id=a%20b', undefined, 'series_id', ID_REASON],
  // path parameters
  ['a bill id in the path with a space', 'GET', '/bills/bad%20id', undefined, 'billId', ID_REASON],
  ['a bill id in the path of 65 characters', 'POST', `/bills/${'x'.repeat(65)}/close`, undefined, 'billId'],
  // POST /bills/:billId/cancel
  ['close_now as a word', 'POST', '/bills/b-1/cancel', { close_now: 'yes' }, 'close_now', 'must be true or false'],
  // POST /bills/:billId/line-items
  ['a zero amount', 'POST', '/bills/b-1/line-items', { ...item, amount: 0 }, 'amount', AMOUNT_REASON],
  ['a negative amount', 'POST', '/bills/b-1/line-items', { ...item, amount: -5 }, 'amount', AMOUNT_REASON],
  ['a fractional amount', 'POST', '/bills/b-1/line-items', { ...item, amount: 1.5 }, 'amount', AMOUNT_REASON],
  ['an amount of 2^53', 'POST', '/bills/b-1/line-items', { ...item, amount: 2 ** 53 }, 'amount', AMOUNT_REASON],
  ['an amount as a string', 'POST', '/bills/b-1/line-items', { ...item, amount: '100' }, 'amount', AMOUNT_REASON],
  ['no amount', 'POST', '/bills/b-1/line-items', { currency: 'USD', description: 'x' }, 'amount', 'is required'],
  ['a null amount', 'POST', '/bills/b-1/line-items', { ...item, amount: null }, 'amount', 'is required'],
  [
    'a lower-case currency',
    'POST',
    '/bills/b-1/line-items',
    { ...item, currency: 'usd' },
    'currency',
    'must be an ISO 4217 code of three capital letters',
  ],
  ['no description', 'POST', '/bills/b-1/line-items', { amount: 1, currency: 'USD' }, 'description', 'is required'],
  ['a blank description of an item', 'POST', '/bills/b-1/line-items', { ...item, description: '   ' }, 'description', 'must not be blank'],
  [
    '501 characters, counted as characters',
    'POST',
    '/bills/b-1/line-items',
    { ...item, description: 'é'.repeat(501) },
    'description',
    'must be at most 500 characters',
  ],
  ['metadata as an array', 'POST', '/bills/b-1/line-items', { ...item, metadata: [1] }, 'metadata', 'must be a JSON object'],
  ['an empty body', 'POST', '/bills/b-1/line-items', '', 'amount', 'is required'],
  ['a JSON null body', 'POST', '/bills/b-1/line-items', 'null', 'amount', 'is required'],
  // POST /bills/:billId/line-items/batch
  ['no items', 'POST', '/bills/b-1/line-items/batch', {}, 'items', 'is required'],
  ['no item at all', 'POST', '/bills/b-1/line-items/batch', { items: [] }, 'items', 'must be an array of 1 to 1000 line items'],
  [
    '1001 items',
    'POST',
    '/bills/b-1/line-items/batch',
    { items: Array.from({ length: 1001 }, () => item) },
    'items',
    'must be an array of 1 to 1000 line items',
  ],
  ['items that are a string', 'POST', '/bills/b-1/line-items/batch', { items: 'x' }, 'items', 'must be an array of 1 to 1000 line items'],
  [
    'a bad item among good ones',
    'POST',
    '/bills/b-1/line-items/batch',
    { items: [item, item, item, { ...item, amount: 0 }] },
    'items[3].amount',
    AMOUNT_REASON,
  ],
  [
    'an item without a currency',
    'POST',
    '/bills/b-1/line-items/batch',
    { items: [item, { amount: 1, description: 'x' }] },
    'items[1].currency',
    'is required',
  ],
  // GET /bills/:billId/line-items
  ['a line item limit of 0', 'GET', '/bills/b-1/line-items?limit=0', undefined, 'limit'],
  // POST /bills/:billId/invoice/payments: unknown fields are refused
  [
    'a misspelt payment field',
    'POST',
    '/bills/b-1/invoice/payments',
    { amount: 1, currency: 'EUR', amont: 2 },
    'amont',
    'is not a field of this request (amount, currency, paid_at, reference)',
  ],
  ['a zero payment', 'POST', '/bills/b-1/invoice/payments', { amount: 0, currency: 'EUR' }, 'amount', AMOUNT_REASON],
  ['a payment in lower case', 'POST', '/bills/b-1/invoice/payments', { amount: 1, currency: 'eur' }, 'currency'],
  [
    'a payment dated yesterday, in words',
    'POST',
    '/bills/b-1/invoice/payments',
    { amount: 1, currency: 'EUR', paid_at: 'yesterday' },
    'paid_at',
    'must be an RFC 3339 timestamp with a time zone, e.g. 2030-01-31T00:00:00Z',
  ],
  [
    'a reference of 201 characters',
    'POST',
    '/bills/b-1/invoice/payments',
    { amount: 1, currency: 'EUR', reference: 'r'.repeat(201) },
    'reference',
    'must be at most 200 characters',
  ],
  // POST /bills/:billId/credit-notes
  [
    'a line without a reason',
    'POST',
    '/bills/b-1/credit-notes',
    { lines: [{ amount: 5, currency: 'EUR' }] },
    'lines[0].reason',
    'is required',
  ],
  [
    'a line with a reason of 501 characters',
    'POST',
    '/bills/b-1/credit-notes',
    { lines: [{ ...line, reason: 'r'.repeat(501) }] },
    'lines[0].reason',
    'is required: 1 to 500 characters',
  ],
  ['a line with an unknown field', 'POST', '/bills/b-1/credit-notes', { lines: [line, { ...line, note: 'x' }] }, 'lines[1].note'],
  ['lines that are a number', 'POST', '/bills/b-1/credit-notes', { lines: 5 }, 'lines', 'must be a list of 1 to 100 lines'],
  ['no line at all', 'POST', '/bills/b-1/credit-notes', { lines: [] }, 'lines', 'must be a list of 1 to 100 lines'],
  ['full as a word', 'POST', '/bills/b-1/credit-notes', { full: 'yes' }, 'full', 'must be true or false'],
  // POST /bills/:billId/invoice/void and mark-uncollectible
  ['a void with an unknown field', 'POST', '/bills/b-1/invoice/void', { reasons: 'x' }, 'reasons'],
  ['a write-off with an unknown field', 'POST', '/bills/b-1/invoice/mark-uncollectible', { reasons: 'x' }, 'reasons'],
  ['a write-off with an array body', 'POST', '/bills/b-1/invoice/mark-uncollectible', '[]', 'body'],
  // webhooks: unknown fields are refused
  ['a webhook URL that is not one', 'POST', '/webhooks', { url: 'nope', events: ['*'] }, 'url', 'must be an absolute URL'],
  [
    'a webhook URL of 2049 characters',
    'POST',
    '/webhooks',
    { url: `http://example.com/${'x'.repeat(2030)}`, events: ['*'] },
    'url',
    'must be at most 2048 characters',
  ],
  ['a webhook without events', 'POST', '/webhooks', { url: 'http://example.com/h' }, 'events', 'is required'],
  [
    'a webhook with no event',
    'POST',
    '/webhooks',
    { url: 'http://example.com/h', events: [] },
    'events',
    'must be a non-empty list of event types, or ["*"]',
  ],
  [
    'a misspelt webhook field',
    'POST',
    '/webhooks',
    { url: 'http://example.com/h', events: ['*'], descripton: 'x' },
    'descripton',
    'is not a field of this request (url, events, description)',
  ],
  ['a URL set to null', 'PATCH', '/webhooks/w-1', { url: null }, 'url', 'is required'],
  ['enabled as a word', 'PATCH', '/webhooks/w-1', { enabled: 'no' }, 'enabled', 'must be true or false'],
  ['a misspelt change', 'PATCH', '/webhooks/w-1', { enabeld: false }, 'enabeld'],
  ['a webhook limit of 101', 'GET', '/webhooks?limit=101', undefined, 'limit', 'must be an integer from 1 to 100'],
  [
    'a delivery status that is none',
    'GET',
    '/webhooks/w-1/deliveries?status=lost',
    undefined,
    'status',
    'must be one of: pending, succeeded, failed, cancelled',
  ],
  [
    'a delivery id in upper case',
    'POST',
    '/webhooks/w-1/deliveries/0193A7E2-0000-7000-8000-000000000000/retry',
    undefined,
    'deliveryId',
    'must be a delivery id (a lower-case UUID)',
  ],
];

describe('the request schemas', () => {
  it.each(rows(shapes))('refuse %s, naming the field', async (_what, method, url, body, field, reason) => {
    const answer = await send(app, method, url, body);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      code: 'invalid_argument',
      message: field === 'body' ? 'request body must be a JSON object' : `${field} ${answer.body.details?.reason}`,
      details: { field, reason: reason ?? expect.any(String) },
    });
  });
});

// Passed the shape; refused by a rule the type cannot say, before any I/O.
const rules: Case[] = [
  ['a bill without a period end', 'POST', '/bills', {}, 'billing_period_end', 'is required'],
  [
    'a period end in the past',
    'POST',
    '/bills',
    { billing_period_end: '2020-01-01T00:00:00Z' },
    'billing_period_end',
    'must be in the future',
  ],
  [
    'a period end that is no date',
    'POST',
    '/bills',
    { billing_period_end: '2031-02-30T00:00:00Z' },
    'billing_period_end',
    'is not a real date and time',
  ],
  [
    'a currency that does not exist',
    'POST',
    '/bills',
    { currency: 'ABC', billing_period_end: END },
    'currency',
    'ABC is not a supported currency',
  ],
  ['an interval on a usage-based bill', 'POST', '/bills', { billing_period_end: END, interval: 'P1M' }, 'interval'],
  ['a recurring bill without an interval', 'POST', '/bills', { policy: 'recurring' }, 'interval'],
  [
    'a fee in another currency',
    'POST',
    '/bills',
    { policy: 'monthly', currency: 'EUR', recurring_fee: { amount: 1, currency: 'USD', description: 'x' } },
    'recurring_fee.currency',
    "must be the bill's currency, EUR",
  ],
  [
    'a NUL in a description',
    'POST',
    '/bills/b-1/line-items',
    '{"amount":1,"currency":"USD","description":"a\\u0000b"}',
    'description',
    'must not contain NUL characters or unpaired surrogates',
  ],
  [
    'an unpaired surrogate in metadata',
    'POST',
    '/bills/b-1/line-items',
    '{"amount":1,"currency":"USD","description":"x","metadata":{"k":"\\udc00"}}',
    'metadata',
  ],
  [
    'a NUL in a metadata key',
    'POST',
    '/bills/b-1/line-items',
    '{"amount":1,"currency":"USD","description":"x","metadata":{"\\u0000":1}}',
    'metadata',
  ],
  [
    'metadata over 4 KB',
    'POST',
    '/bills/b-1/line-items',
    { ...item, metadata: { x: 'y'.repeat(4100) } },
    'metadata',
    'must be at most 4096 bytes as JSON',
  ],
  ['a non-currency ISO code', 'POST', '/bills/b-1/line-items', { ...item, currency: 'XAU' }, 'currency', 'XAU is not a supported currency'],
  [
    'an unknown currency in a batch',
    'POST',
    '/bills/b-1/line-items/batch',
    { items: [item, { ...item, currency: 'XYZ' }] },
    'items[1].currency',
  ],
  [
    'a NUL in a batch item',
    'POST',
    '/bills/b-1/line-items/batch',
    `{"items":[${JSON.stringify(item)},{"amount":1,"currency":"USD","description":"\\u0000"}]}`,
    'items[1].description',
  ],
  ['line items past the largest page', 'GET', '/bills/b-1/line-items?limit=1001', undefined, 'limit', 'must be an integer from 1 to 1000'],
  ['bills past the largest page', 'GET', '/bills?limit=101', undefined, 'limit', 'must be an integer from 1 to 100'],
  ['a cursor that is none', 'GET', '/bills?cursor=bm9wZQ', undefined, 'cursor', 'is not a cursor this endpoint returned'],
  [
    'a payment in the future',
    'POST',
    '/bills/b-1/invoice/payments',
    { amount: 1, currency: 'EUR', paid_at: '2099-01-01T00:00:00Z' },
    'paid_at',
    'must not be in the future',
  ],
  ['lines beside full', 'POST', '/bills/b-1/credit-notes', { full: true, lines: [line] }, 'lines', 'must be absent with full: true'],
  ['neither lines nor full', 'POST', '/bills/b-1/credit-notes', {}, 'lines', 'are required (or full: true)'],
  [
    'a line in a currency that does not exist',
    'POST',
    '/bills/b-1/credit-notes',
    { lines: [line, { ...line, currency: 'XYZ' }] },
    'lines[1].currency',
  ],
  ['an ftp webhook', 'POST', '/webhooks', { url: 'ftp://example.com/h', events: ['*'] }, 'url', 'must be an http:// or https:// URL'],
  ['a webhook URL with a password', 'POST', '/webhooks', { url: 'http://u:p@example.com/h', events: ['*'] }, 'url'],
  ['an unknown event type', 'POST', '/webhooks', { url: 'http://example.com/h', events: ['bill.lost'] }, 'events'],
  ['an empty change', 'PATCH', '/webhooks/w-1', {}, 'body', 'must change at least one of url, events, description, enabled'],
];

describe('the domain rules after the shape', () => {
  it.each(rows(rules))('refuse %s, naming the field', async (_what, method, url, body, field, reason) => {
    const answer = await send(app, method, url, body);
    expect(answer).toMatchObject({ status: 400, body: { code: 'invalid_argument', details: { field, ...(reason ? { reason } : {}) } } });
  });
});

describe('requests of the right shape', () => {
  it.each([
    [
      'a bill with nulls for absent fields',
      'POST',
      '/bills',
      { billing_period_end: END, bill_id: null, currency: null, description: null, metadata: 1 },
    ],
    ['an item with unknown fields, which are ignored', 'POST', '/bills/b-1/line-items', { ...item, note: 'x', metadata: null }],
    ['a batch', 'POST', '/bills/b-1/line-items/batch', { items: [item, { ...item, metadata: { a: [1] } }] }],
    ['a listing with empty values, taken as absent', 'GET', '/bills?limit=&status=&cursor=', undefined],
    ['a listing with numbers in its query', 'GET', '/bills?limit=5&totals=live&invoice_status=overdue', undefined],
    ['a close with any body', 'POST', '/bills/b-1/close', '[1, 2]'],
    ['a cancel with no body', 'POST', '/bills/b-1/cancel', undefined],
    [
      'a payment',
      'POST',
      '/bills/b-1/invoice/payments',
      { amount: 1, currency: 'EUR', paid_at: '2026-01-01T00:00:00+04:00', reference: null },
    ],
    ['a full credit note', 'POST', '/bills/b-1/credit-notes', { full: true, reason: 'goodwill' }],
    ['a write-off with an empty body', 'POST', '/bills/b-1/invoice/mark-uncollectible', {}],
    ['a change of description to none', 'PATCH', '/webhooks/w-1', { description: null }],
  ])('let %s through to the use case', async (_what, method, url, body) => {
    const answer = await send(app, method, url, body);
    expect(answer).toMatchObject({ status: 503, body: { code: 'unavailable', message: REACHED_THE_STUB } });
  });

  it("answer Fastify's own refusals in the error shape: malformed JSON 400, a body too large 413, a content type it does not parse 415", async () => {
    expect(await send(app, 'POST', '/bills', '{"billing_period_end": ')).toMatchObject({
      status: 400,
      body: { code: 'invalid_argument', details: { reason: 'FST_ERR_CTP_INVALID_JSON_BODY' } },
    });
    const big = await app.inject({
      method: 'POST',
      url: '/bills',
      payload: `"${'x'.repeat(2 * 1024 * 1024)}"`,
      headers: { 'content-type': 'application/json' },
    });
    expect([big.statusCode, big.json()]).toMatchObject([
      413,
      { code: 'invalid_argument', details: { reason: 'FST_ERR_CTP_BODY_TOO_LARGE' } },
    ]);
    const form = await app.inject({
      method: 'POST',
      url: '/bills',
      payload: 'a=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect([form.statusCode, form.json()]).toMatchObject([
      415,
      { code: 'invalid_argument', details: { reason: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' } },
    ]);
  });
});

describe('around the shape check', () => {
  it('asks who is calling first: without a key, a bad body is a 401, not a 400', async () => {
    const guarded = stubServer({ AUTH_REQUIRED: 'true' });
    try {
      expect((await send(guarded, 'POST', '/bills/b-1/line-items', { amount: 0 })).status).toBe(401);
    } finally {
      await guarded.close();
    }
  });

  it('counts the adds it refuses, as the use case counts those it refuses', async () => {
    const count = async (reason: string) =>
      (await lineItemsMetric.get()).values.find((v) => v.labels.result === 'rejected' && v.labels.reason === reason)?.value ?? 0;
    const [single, batch] = [await count('invalid_argument:amount'), await count('invalid_argument:batch')];
    await send(app, 'POST', '/bills/b-1/line-items', { ...item, amount: 0 });
    await send(app, 'POST', '/bills/b-1/line-items/batch', { items: [] });
    await send(app, 'POST', '/bills/b-1/line-items/batch', { items: [{ ...item, currency: 'XYZ' }] });
    expect([await count('invalid_argument:amount'), await count('invalid_argument:batch')]).toEqual([single + 1, batch + 2]);
  });
});
