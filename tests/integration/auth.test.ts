/**
 * API keys over HTTP: 401 without a valid key, 403 without the scope, keys stored only hashed,
 * managed by the `npm run keys` CLI, revocation, and rate limiting of repeated failures.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Authenticator, insertApiKey, type Scope } from '../../core/auth';
import { call, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

const root = path.resolve(__dirname, '..', '..');
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ AUTH_REQUIRED: 'true', AUTH_CACHE_MS: '0', METRICS_PUBLIC: 'false', AUTH_MAX_FAILURES: '1000' });
});
afterAll(() => stack.stop());

const key = async (...scopes: Scope[]) => (await insertApiKey(stack.db, 'test', scopes)).key;
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

/** `npm run keys -- ...`, as an operator runs it, against the test database. */
async function keysCli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(root, 'host', 'keys.ts'), ...args], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: stack.config.databaseUrl },
  });
  return stdout;
}

describe('API keys', () => {
  it('refuses a missing, malformed or unknown key with 401 in the Encore error shape', async () => {
    const unknown = 'fees_aaaaaaaaaaaaaaaa_' + 'A'.repeat(43);
    for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }, bearer('not-a-key'), bearer(unknown)]) {
      const reply = await call(stack, 'GET', '/bills', undefined, headers);
      expect(reply.status).toBe(401);
      expect(reply.body).toEqual({ code: 'unauthenticated', message: expect.stringContaining('Bearer'), details: null });
    }
  });

  it('grants by scope: read keys read, write keys write, admin does everything; 403 otherwise', async () => {
    const [read, write, admin] = [await key('bills:read'), await key('bills:write'), await key('admin')];
    const billId = uid();
    const body = { bill_id: billId, billing_period_end: inSeconds(3600) };

    const denied = await call(stack, 'POST', '/bills', body, bearer(read));
    expect(denied).toMatchObject({ status: 403, body: { code: 'permission_denied', details: { required_scope: 'bills:write' } } });
    expect((await stack.db.query('SELECT 1 FROM bills WHERE bill_id = $1', [billId])).rowCount).toBe(0);

    expect((await call(stack, 'POST', '/bills', body, bearer(write))).status).toBe(200);
    expect((await call(stack, 'GET', `/bills/${billId}`, undefined, bearer(write))).status).toBe(403);
    expect((await call(stack, 'GET', `/bills/${billId}`, undefined, bearer(read))).status).toBe(200);
    expect((await call(stack, 'POST', `/bills/${billId}/close`, undefined, bearer(admin))).status).toBe(200);
  });

  it('keeps health public and metrics behind the admin scope when so configured', async () => {
    expect((await call(stack, 'GET', '/healthz')).status).toBe(200);
    expect((await call(stack, 'GET', '/metrics')).status).toBe(401);
    expect((await call(stack, 'GET', '/metrics', undefined, bearer(await key('bills:read')))).status).toBe(403);
    const metrics = await call(stack, 'GET', '/metrics', undefined, bearer(await key('admin')));
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('fees_http_request_duration_seconds');
  });

  it('is managed by the keys CLI: created once, stored hashed, listed, revoked', async () => {
    const created = await keysCli('create', '--scopes', 'bills:read', '--name', 'cli test');
    const issued = /^(fees_([a-z2-7]{16})_\S{43})$/m.exec(created);
    expect(issued).not.toBeNull();
    const [, apiKey, keyId] = issued!;
    expect((await call(stack, 'GET', '/bills', undefined, bearer(apiKey))).status).toBe(200);

    // Nothing stored reveals the key or its secret.
    const { rows } = await stack.db.query('SELECT * FROM api_keys WHERE key_id = $1', [keyId]);
    expect(rows).toHaveLength(1);
    const secret = apiKey.split('_')[2];
    for (const value of Object.values(rows[0])) {
      const text = Buffer.isBuffer(value) ? value.toString('base64url') + value.toString('hex') : JSON.stringify(value);
      expect(text).not.toContain(secret);
    }

    expect(await keysCli('list')).toMatch(new RegExp(`${keyId}\\s+active\\s+bills:read`));
    expect(await keysCli('revoke', keyId)).toContain(`revoked ${keyId}`);
    expect(await keysCli('list')).toMatch(new RegExp(`${keyId}\\s+revoked`));
    expect((await call(stack, 'GET', '/bills', undefined, bearer(apiKey))).status).toBe(401);
    await expect(keysCli('create', '--scopes', 'bills:delete')).rejects.toThrow(/scopes must be/);
  });
});

describe('repeated failures', () => {
  it('never lock out a valid key, and are counted per address and per key id presented', async () => {
    const auth = new Authenticator(stack.db, { required: true, cacheMs: 0, maxFailures: 3, failureWindowS: 60 });
    const good = `Bearer ${await key('bills:read')}`;
    for (let i = 0; i < 5; i++) await expect(auth.authenticate('Bearer fees_wrong', 'client-a', 'bills:read')).rejects.toBeDefined();
    // Someone else's failures from the same address: the valid key still gets in.
    await expect(auth.authenticate(good, 'client-a', 'bills:read')).resolves.toMatchObject({ scopes: ['bills:read'] });
    // Past the limit, failures from that address answer 429 with when to come back.
    await expect(auth.authenticate('Bearer fees_wrong', 'client-a', 'bills:read')).rejects.toMatchObject({
      code: 'resource_exhausted',
      details: { retry_after_seconds: expect.any(Number) },
    });
    await expect(auth.authenticate('Bearer fees_wrong', 'client-b', 'bills:read')).rejects.toMatchObject({ code: 'unauthenticated' });
    // Guessing one key's secret from many addresses is throttled by the key id presented, while
    // the key itself keeps working; made-up ids get no counter of their own.
    const real = await insertApiKey(stack.db, 'target', ['bills:read']);
    const guess = (c: string) => `Bearer fees_${real.key_id}_${c.repeat(43)}`;
    for (let i = 0; i < 3; i++)
      await expect(auth.authenticate(guess('A'), `spread-${i}`, 'bills:read')).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(auth.authenticate(guess('B'), 'spread-9', 'bills:read')).rejects.toMatchObject({ code: 'resource_exhausted' });
    await expect(auth.authenticate(`Bearer ${real.key}`, 'spread-9', 'bills:read')).resolves.toMatchObject({ key_id: real.key_id });
    for (let i = 0; i < 5; i++) {
      await expect(auth.authenticate(`Bearer fees_abcdefghijklmnop_${'A'.repeat(43)}`, `made-up-${i}`, 'bills:read')).rejects.toMatchObject(
        { code: 'unauthenticated' },
      );
    }
  });

  it('answer 429 over HTTP with a Retry-After header, while a valid key from the same address is served', async () => {
    const limited = await startStack({ AUTH_REQUIRED: 'true', AUTH_MAX_FAILURES: '2' });
    try {
      await call(limited, 'GET', '/bills', undefined, bearer('wrong'));
      await call(limited, 'GET', '/bills', undefined, bearer('wrong'));
      const blocked = await call(limited, 'GET', '/bills', undefined, bearer('wrong'));
      expect(blocked).toMatchObject({ status: 429, body: { code: 'resource_exhausted' } });
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      const good = (await insertApiKey(limited.db, 'good', ['bills:read'])).key;
      expect((await call(limited, 'GET', '/bills', undefined, bearer(good))).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });

  it('take the client from X-Forwarded-For only behind a trusted proxy (TRUST_PROXY)', async () => {
    const from = (client: string) => ({ 'x-forwarded-for': client });
    // Untrusted: every caller on loopback is one address, whatever it writes in the header.
    const plain = await startStack({ AUTH_REQUIRED: 'true', AUTH_MAX_FAILURES: '1' });
    try {
      await call(plain, 'GET', '/bills', undefined, { ...bearer('wrong'), ...from('203.0.113.1') });
      expect((await call(plain, 'GET', '/bills', undefined, { ...bearer('wrong'), ...from('203.0.113.2') })).status).toBe(429);
    } finally {
      await plain.stop();
    }
    // Behind a trusted proxy on loopback: the clients it names are told apart.
    const proxied = await startStack({ AUTH_REQUIRED: 'true', AUTH_MAX_FAILURES: '1', TRUST_PROXY: '127.0.0.1' });
    try {
      await call(proxied, 'GET', '/bills', undefined, { ...bearer('wrong'), ...from('203.0.113.1') });
      expect((await call(proxied, 'GET', '/bills', undefined, { ...bearer('wrong'), ...from('203.0.113.2') })).status).toBe(401);
      expect((await call(proxied, 'GET', '/bills', undefined, { ...bearer('wrong'), ...from('203.0.113.1') })).status).toBe(429);
    } finally {
      await proxied.stop();
    }
  });
});
