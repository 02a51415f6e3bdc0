/**
 * API keys over HTTP: 401 without a valid key, 403 without the scope, keys stored only hashed,
 * managed by the `npm run keys` CLI, revocation, and rate limiting of repeated failures. One stack,
 * behind a trusted proxy on loopback, so each test fails from client addresses of its own; the
 * rules themselves (scopes, key format, parsing, counting) are tests/unit/auth.test.ts's.
 */
import { insertApiKey, type Scope } from '../../core/auth';
import { buildServer } from '../../host/server';
import { runLogStream } from '../helpers/run-logs';
import { runScript } from '../helpers/processes';
import { call, inSeconds, rowsOf, startStack, uid, type Stack } from '../helpers/stack';

/** Failed attempts a client may make within the window; the next one answers 429. */
const MAX_FAILURES = 3;
const WINDOW_S = 1;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    AUTH_REQUIRED: 'true',
    AUTH_CACHE_MS: '0',
    METRICS_PUBLIC: 'false',
    AUTH_MAX_FAILURES: String(MAX_FAILURES),
    AUTH_FAILURE_WINDOW_S: String(WINDOW_S),
    TRUST_PROXY: '127.0.0.1',
  });
});
afterAll(() => stack.stop());

const key = async (...scopes: Scope[]) => (await insertApiKey(stack.db, 'test', scopes)).key;
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

let clients = 0;
/** A client address of its own, as the trusted proxy (loopback) names it in X-Forwarded-For. */
const client = () => ({ 'x-forwarded-for': `198.51.${Math.floor(++clients / 250)}.${clients % 250}` });

/** `npm run keys -- ...`, as an operator runs it, against the test database. */
const keysCli = (...args: string[]) => runScript('host/keys.ts', args, { DATABASE_URL: stack.config.databaseUrl });

describe('API keys', () => {
  it('refuses a missing, malformed or unknown key with 401 in the Encore error shape', async () => {
    const unknown = 'fees_aaaaaaaaaaaaaaaa_' + 'A'.repeat(43);
    for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }, bearer('not-a-key'), bearer(unknown)]) {
      const reply = await call(stack, 'GET', '/bills', undefined, { ...headers, ...client() });
      expect(reply.status).toBe(401);
      expect(reply.body).toEqual({ code: 'unauthenticated', message: expect.stringContaining('Bearer'), details: null });
    }
  });

  it('grants by scope: read keys read, write keys write, admin does everything; 403 otherwise', async () => {
    const [read, write, admin] = [await key('bills:read'), await key('bills:write'), await key('admin')];
    const billId = uid();
    const body = { bill_id: billId, billing_period_end: inSeconds(3600) };

    const before = await rowsOf(stack.db, { bills: [billId] });
    const denied = await call(stack, 'POST', '/bills', body, bearer(read));
    expect(denied).toMatchObject({ status: 403, body: { code: 'permission_denied', details: { required_scope: 'bills:write' } } });
    expect(await rowsOf(stack.db, { bills: [billId] })).toEqual(before);

    expect((await call(stack, 'POST', '/bills', body, bearer(write))).status).toBe(200);
    expect((await call(stack, 'GET', `/bills/${billId}`, undefined, bearer(write))).status).toBe(403);
    expect((await call(stack, 'GET', `/bills/${billId}`, undefined, bearer(read))).status).toBe(200);
    expect((await call(stack, 'POST', `/bills/${billId}/close`, undefined, bearer(admin))).status).toBe(200);
  });

  it('keeps health public and metrics behind the admin scope when so configured', async () => {
    expect((await call(stack, 'GET', '/healthz')).status).toBe(200);
    expect((await call(stack, 'GET', '/metrics', undefined, client())).status).toBe(401);
    expect((await call(stack, 'GET', '/metrics', undefined, bearer(await key('bills:read')))).status).toBe(403);
    const metrics = await call(stack, 'GET', '/metrics', undefined, bearer(await key('admin')));
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('fees_http_request_duration_seconds');
  });

  it('is managed by the keys CLI: created once, stored hashed, listed, revoked', async () => {
    const created = await keysCli('create', '--scopes', 'bills:read', '--name', 'cli test');
    expect(created.code).toBe(0);
    const issued = /^(fees_([a-z2-7]{16})_\S{43})$/m.exec(created.stdout);
    expect(issued).not.toBeNull();
    const [, apiKey, keyId] = issued!;
    expect((await call(stack, 'GET', '/bills', undefined, bearer(apiKey))).status).toBe(200);

    // Nothing stored reveals the key or its secret (base64url: it may hold '_' itself).
    const { rows } = await stack.db.query('SELECT * FROM api_keys WHERE key_id = $1', [keyId]);
    expect(rows).toHaveLength(1);
    const secret = apiKey.slice(`fees_${keyId}_`.length);
    for (const value of Object.values(rows[0])) {
      const text = Buffer.isBuffer(value) ? value.toString('base64url') + value.toString('hex') : JSON.stringify(value);
      expect(text).not.toContain(secret);
    }

    expect((await keysCli('list')).stdout).toMatch(new RegExp(`${keyId}\\s+active\\s+bills:read`));
    expect(await keysCli('revoke', keyId)).toMatchObject({ code: 0, stdout: expect.stringContaining(`revoked ${keyId}`) });
    expect((await keysCli('list')).stdout).toMatch(new RegExp(`${keyId}\\s+revoked`));
    expect((await call(stack, 'GET', '/bills', undefined, { ...bearer(apiKey), ...client() })).status).toBe(401);
    expect(await keysCli('create', '--scopes', 'bills:delete')).toMatchObject({
      code: 1,
      stderr: expect.stringContaining(
        'keys: scopes must be a comma-separated list of bills:read, bills:write, webhooks:manage, admin (unknown: bills:delete)',
      ),
    });
  });
});

describe('repeated failures', () => {
  it('answer 429 with Retry-After past the limit, serve a valid key meanwhile, and let the client through after the window', async () => {
    const from = client();
    for (let i = 0; i < MAX_FAILURES; i++) {
      expect((await call(stack, 'GET', '/bills', undefined, { ...bearer('wrong'), ...from })).status).toBe(401);
    }
    const blocked = await call(stack, 'GET', '/bills', undefined, { ...bearer('wrong'), ...from });
    expect(blocked).toMatchObject({ status: 429, body: { code: 'resource_exhausted', details: { retry_after_seconds: WINDOW_S } } });
    expect(blocked.headers.get('retry-after')).toBe(String(WINDOW_S));
    // A valid key from the same address is served; another address is counted on its own.
    const good = await key('bills:read');
    expect((await call(stack, 'GET', '/bills', undefined, { ...bearer(good), ...from })).status).toBe(200);
    expect((await call(stack, 'GET', '/bills', undefined, { ...bearer('wrong'), ...client() })).status).toBe(401);

    // Come back when Retry-After says: the window has passed, the key is checked again.
    await new Promise((r) => setTimeout(r, Number(blocked.headers.get('retry-after')) * 1000));
    const again = await call(stack, 'GET', '/bills', undefined, { ...bearer('wrong'), ...from });
    expect(again).toMatchObject({ status: 401, body: { code: 'unauthenticated' } });
  });

  it('are counted per client named by X-Forwarded-For behind a trusted proxy', async () => {
    const [first, second] = [client(), client()];
    for (let i = 0; i < MAX_FAILURES; i++) await call(stack, 'GET', '/bills', undefined, { ...bearer('wrong'), ...first });
    expect((await call(stack, 'GET', '/bills', undefined, { ...bearer('wrong'), ...second })).status).toBe(401);
    expect((await call(stack, 'GET', '/bills', undefined, { ...bearer('wrong'), ...first })).status).toBe(429);
  });

  it('are counted per connection address when no proxy is trusted, whatever X-Forwarded-For says', async () => {
    // The same service without TRUST_PROXY (a server of its own, so its counters are its own).
    const app = buildServer(
      { ...stack.deps, config: { ...stack.config, trustProxy: false } },
      { logLevel: 'silent', logStream: runLogStream('service') },
    );
    try {
      const attempt = async () =>
        (await app.inject({ method: 'GET', url: '/bills', headers: { ...bearer('wrong'), ...client() }, remoteAddress: '127.0.0.1' }))
          .statusCode;
      for (let i = 0; i < MAX_FAILURES; i++) expect(await attempt()).toBe(401);
      expect(await attempt()).toBe(429);
    } finally {
      await app.close();
    }
  });
});
