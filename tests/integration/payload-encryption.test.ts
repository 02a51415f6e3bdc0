/**
 * Encrypted payloads on a real Temporal (PAYLOAD_ENCRYPTION_KEYS): a bill's history as the Temporal
 * CLI reads it holds no amount, email or description in clear text; through our codec endpoint
 * (`--codec-endpoint`, an `admin` key) it shows them; the endpoint answers the Temporal UI's
 * preflight from its origin only; bills keep working when the key rotates.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../core/config';
import { billWorkflowId } from '../../bills/messages';
import { findTemporalCli } from '../../host/temporal-dev';
import { runCommand } from '../helpers/processes';
import { call, inSeconds, startStack, uid, withApiHost, type Stack } from '../helpers/stack';

const key1 = `k1=${randomBytes(32).toString('base64')}`;
const key2 = `k2=${randomBytes(32).toString('base64')}`;
const UI_ORIGIN = 'http://temporal-ui.example:8080';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ PAYLOAD_ENCRYPTION_KEYS: key1, CODEC_CORS_ORIGINS: UI_ORIGIN });
});
afterAll(() => stack?.stop());

/** The codec endpoint is an operator's tool outside the OpenAPI document (as /metrics is): plain fetch. */
async function codec(on: Stack, op: 'encode' | 'decode', body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${on.url}/codec/${op}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

/** Every string of the CLI's JSON, and what it says read as base64 (how the CLI prints payload bytes). */
function readable(json: string): string {
  const strings: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') strings.push(v, Buffer.from(v, 'base64').toString('latin1'));
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(JSON.parse(json));
  return strings.join('\n');
}

async function history(billId: string, ...codec: string[]): Promise<string> {
  const cli = findTemporalCli(loadConfig())!;
  const args = [
    'workflow',
    'show',
    '--workflow-id',
    billWorkflowId(billId),
    '--output',
    'json',
    '--address',
    stack.config.temporal.address!,
  ];
  const { code, stdout, stderr } = await runCommand(cli, [...args, ...codec]);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  return stdout;
}

/** A bill with a customer and a line item whose amount, currency and description are easy to spot. */
async function billWithSecrets(): Promise<{ billId: string; email: string; description: string; amount: number }> {
  const billId = uid('enc');
  const email = `${uid('payer')}@example.com`;
  const description = `Secret storage ${uid('d')}`;
  const amount = 987_654_321;
  expect(
    (await call(stack, 'POST', '/bills', { bill_id: billId, customer_email: email, billing_period_end: inSeconds(3600) })).status,
  ).toBe(200);
  expect((await call(stack, 'POST', `/bills/${billId}/line-items`, { amount, currency: 'GEL', description })).status).toBe(200);
  return { billId, email, description, amount };
}

it('keeps amounts, emails and descriptions out of the history Temporal stores, and shows them through the codec endpoint', async () => {
  const { billId, email, description, amount } = await billWithSecrets();
  // The service reads its own payloads back: the live totals come from a (decrypted) query.
  expect((await call(stack, 'GET', `/bills/${billId}`)).body).toMatchObject({ totals: [{ amount, currency: 'GEL' }] });

  const sealed = readable(await history(billId));
  expect(sealed).toContain('binary/encrypted');
  for (const clear of [email, description, String(amount)]) expect(sealed).not.toContain(clear);

  const opened = readable(
    await history(billId, '--codec-endpoint', `${stack.url}/codec`, '--codec-auth', 'Bearer no-key-needed-auth-is-off'),
  );
  expect(opened).not.toContain('binary/encrypted');
  for (const clear of [email, description, String(amount)]) expect(opened).toContain(clear);
});

it('answers the Temporal UI preflight from its origin only, and codes payloads both ways', async () => {
  const preflight = (origin: string) =>
    fetch(`${stack.url}/codec/decode`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
    });
  const allowed = await preflight(UI_ORIGIN);
  expect(allowed.status).toBeLessThan(300);
  expect(allowed.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
  expect((await preflight('http://elsewhere.example')).headers.get('access-control-allow-origin')).toBeNull();

  const payload = {
    metadata: { encoding: Buffer.from('json/plain').toString('base64') },
    data: Buffer.from('{"amount":42}').toString('base64'),
  };
  const encoded = await codec(stack, 'encode', { payloads: [payload] });
  expect(encoded.status).toBe(200);
  expect(Buffer.from(encoded.body.payloads[0].metadata.encoding, 'base64').toString()).toBe('binary/encrypted');
  const decoded = await codec(stack, 'decode', encoded.body);
  expect(decoded.body).toEqual({ payloads: [payload] });

  // What the Temporal CLI sends when a history event has no payload: nothing to code.
  expect(await codec(stack, 'decode', {})).toEqual({ status: 200, body: { payloads: [] } });
  const bad = await codec(stack, 'decode', { payloads: {} });
  expect(bad.status).toBe(400);
  expect(bad.body).toMatchObject({ code: 'invalid_argument', details: { field: 'payloads' } });
});

it('decodes what key 1 sealed after key 2 becomes current, and names the key it lacks once key 1 is retired', async () => {
  const [sealedUnder1] = (await codec(stack, 'encode', { payloads: [{ metadata: {}, data: Buffer.from('"x"').toString('base64') }] })).body
    .payloads;
  // An API host on the rotated keys (key 2 first, key 1 kept) decodes key 1's payloads and writes key 2's.
  await withApiHost(stack, { PAYLOAD_ENCRYPTION_KEYS: `${key2},${key1}` }, async (rotated) => {
    const decoded = await codec(rotated, 'decode', { payloads: [sealedUnder1] });
    expect(decoded.status).toBe(200);
    const encoded = await codec(rotated, 'encode', { payloads: [{ metadata: {}, data: Buffer.from('"y"').toString('base64') }] });
    expect(Buffer.from(encoded.body.payloads[0].metadata['encryption-key-id'], 'base64').toString()).toBe('k2');
    // Without key 1, the endpoint says which key it lacks.
    await withApiHost(stack, { PAYLOAD_ENCRYPTION_KEYS: key2 }, async (retired) => {
      const refused = await codec(retired, 'decode', { payloads: [sealedUnder1] });
      expect(refused.status).toBe(400);
      expect(refused.body.message).toMatch(/key "k1"/);
    });
  });
});
