/**
 * API keys without a server (core/auth.ts): the key format and what is stored of it, scopes,
 * parsing of a scope list and of X-Forwarded-For, and the Authenticator's rate limiting of failed
 * attempts. tests/integration/auth.test.ts covers the same rules over HTTP against the real table.
 */
import { createHash } from 'node:crypto';
import {
  ANONYMOUS,
  Authenticator,
  SCOPES,
  clientFromForwardedFor,
  generateApiKey,
  hasScope,
  parseScopes,
  requireScope,
  type AuthSettings,
  type Scope,
} from '../../core/auth';
import type { Queryable } from '../../core/db';
import { AppError, type ErrCode } from '../../core/errors';

/**
 * The api_keys table as the Authenticator reads it: one row by key id (its look-up is one
 * `UPDATE … RETURNING secret_sha256, scopes, active`), here from memory.
 */
function keyTable() {
  const rows = new Map<string, { secret_sha256: Buffer; scopes: Scope[]; active: boolean }>();
  const db = {
    query: async (_sql: string, [keyId]: [string]) => {
      const row = rows.get(keyId);
      return { rows: row ? [row] : [], rowCount: row ? 1 : 0 };
    },
  } as unknown as Queryable;
  const add = (...scopes: Scope[]) => {
    const { key, key_id, secret_sha256 } = generateApiKey();
    rows.set(key_id, { secret_sha256, scopes, active: true });
    return { key, key_id };
  };
  const revoke = (keyId: string) => {
    rows.get(keyId)!.active = false;
  };
  return { db, add, revoke };
}

const settings = (s: Partial<AuthSettings> = {}): AuthSettings => ({
  required: true,
  cacheMs: 0,
  maxFailures: 3,
  failureWindowS: 60,
  ...s,
});

/** The AppError a call is refused with, checked to be one with `code` and its HTTP status. */
async function refusal(call: Promise<unknown>, code: ErrCode, status: number): Promise<AppError> {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect(err).toMatchObject({ code, status });
  return err as AppError;
}

describe('an API key', () => {
  it('is fees_<16 base32 characters of id>_<43 base64url characters of secret>, a new one each time', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).toMatch(/^fees_[a-z2-7]{16}_[A-Za-z0-9_-]{43}$/);
    expect(a.key.slice(5, 21)).toBe(a.key_id);
    expect(new Set([a.key, b.key, a.key_id, b.key_id]).size).toBe(4);
  });

  it('is stored as the SHA-256 of its secret only', () => {
    const { key, key_id, secret_sha256 } = generateApiKey();
    const secret = key.slice(`fees_${key_id}_`.length); // base64url: the secret may hold '_' itself
    expect(secret_sha256).toEqual(createHash('sha256').update(secret).digest());
    expect(secret_sha256.toString('base64url')).not.toContain(secret);
  });
});

describe('scopes', () => {
  it('grant admin everything, and every other scope only itself', () => {
    for (const needed of SCOPES) {
      expect(hasScope(['admin'], needed)).toBe(true);
      for (const granted of SCOPES.filter((s) => s !== 'admin')) expect(hasScope([granted], needed)).toBe(granted === needed);
    }
    expect(hasScope([], 'bills:read')).toBe(false);
  });

  it('refuse a missing scope with permission_denied naming it', async () => {
    const err = await refusal(
      Promise.resolve().then(() => requireScope({ key_id: 'k', scopes: ['bills:read'] }, 'bills:write')),
      'permission_denied',
      403,
    );
    expect(err.details).toEqual({ required_scope: 'bills:write' });
    expect(() => requireScope({ key_id: 'k', scopes: ['bills:write'] }, 'bills:write')).not.toThrow();
  });

  it('parse from a comma-separated list, trimmed and without repeats', () => {
    expect(parseScopes(' bills:read,bills:write , bills:read,')).toEqual(['bills:read', 'bills:write']);
    expect(parseScopes('admin')).toEqual(['admin']);
  });

  it('refuse an empty list or an unknown scope, naming what is allowed and what is not', () => {
    expect(() => parseScopes(' , ')).toThrow(`scopes must be a comma-separated list of ${SCOPES.join(', ')}`);
    expect(() => parseScopes('bills:read,bills:delete')).toThrow(/\(unknown: bills:delete\)$/);
  });
});

describe('the client behind X-Forwarded-For', () => {
  it('is the entry the last trusted proxy appended, counted from the right', () => {
    expect(clientFromForwardedFor('6.6.6.6, 203.0.113.9')).toBe('203.0.113.9');
    expect(clientFromForwardedFor('6.6.6.6, 203.0.113.9, 10.0.0.2', 2)).toBe('203.0.113.9');
    expect(clientFromForwardedFor(' 203.0.113.9 ,, ')).toBe('203.0.113.9');
  });

  it('is unknown when there are fewer entries than trusted proxies', () => {
    expect(clientFromForwardedFor(undefined)).toBeUndefined();
    expect(clientFromForwardedFor('')).toBeUndefined();
    expect(clientFromForwardedFor('203.0.113.9', 2)).toBeUndefined();
  });
});

describe('the Authenticator', () => {
  it('lets everyone in as the anonymous admin when authentication is off', async () => {
    const auth = new Authenticator(keyTable().db, settings({ required: false }));
    await expect(auth.authenticate(undefined, 'anyone', 'admin')).resolves.toEqual(ANONYMOUS);
  });

  it('refuses a missing, malformed, unknown, wrong or revoked key with 401, and a valid key without the scope with 403', async () => {
    const keys = keyTable();
    const auth = new Authenticator(keys.db, settings({ maxFailures: 100 }));
    const reader = keys.add('bills:read');
    const { key_id } = reader;
    const unknown = `fees_${'a'.repeat(16)}_${'A'.repeat(43)}`;
    const wrongSecret = `fees_${key_id}_${'B'.repeat(43)}`;
    for (const header of [undefined, 'Basic dXNlcjpwYXNz', 'Bearer not-a-key', `Bearer ${unknown}`, `Bearer ${wrongSecret}`]) {
      await refusal(auth.authenticate(header, 'client', 'bills:read'), 'unauthenticated', 401);
    }
    await expect(auth.authenticate(`Bearer ${reader.key}`, 'client', 'bills:read')).resolves.toEqual({ key_id, scopes: ['bills:read'] });
    await refusal(auth.authenticate(`Bearer ${reader.key}`, 'client', 'bills:write'), 'permission_denied', 403);
    keys.revoke(key_id);
    await refusal(auth.authenticate(`Bearer ${reader.key}`, 'client', 'bills:read'), 'unauthenticated', 401);
  });

  it('never locks out a valid key, and counts failures per address and per key id presented', async () => {
    const keys = keyTable();
    const auth = new Authenticator(keys.db, settings({ maxFailures: 3 }));
    const good = `Bearer ${keys.add('bills:read').key}`;
    for (let i = 0; i < 3; i++) await refusal(auth.authenticate('Bearer fees_wrong', 'client-a', 'bills:read'), 'unauthenticated', 401);
    // Past the limit, failures from that address answer 429 with when to come back.
    const limited = await refusal(auth.authenticate('Bearer fees_wrong', 'client-a', 'bills:read'), 'resource_exhausted', 429);
    expect(limited.details).toEqual({ retry_after_seconds: 60 });
    // Someone else's failures from the same address: the valid key still gets in.
    await expect(auth.authenticate(good, 'client-a', 'bills:read')).resolves.toMatchObject({ scopes: ['bills:read'] });
    // Another address is counted on its own.
    await refusal(auth.authenticate('Bearer fees_wrong', 'client-b', 'bills:read'), 'unauthenticated', 401);

    // Guessing one key's secret from many addresses is throttled by the key id presented, while
    // the key itself keeps working; made-up ids get no counter of their own.
    const real = keys.add('bills:read');
    const guess = (c: string) => `Bearer fees_${real.key_id}_${c.repeat(43)}`;
    for (let i = 0; i < 3; i++) await refusal(auth.authenticate(guess('A'), `spread-${i}`, 'bills:read'), 'unauthenticated', 401);
    await refusal(auth.authenticate(guess('B'), 'spread-9', 'bills:read'), 'resource_exhausted', 429);
    await expect(auth.authenticate(`Bearer ${real.key}`, 'spread-9', 'bills:read')).resolves.toMatchObject({ key_id: real.key_id });
    const madeUp = `Bearer fees_abcdefghijklmnop_${'A'.repeat(43)}`;
    for (let i = 0; i < 5; i++) await refusal(auth.authenticate(madeUp, `made-up-${i}`, 'bills:read'), 'unauthenticated', 401);
  });
});
