/**
 * API keys and scopes. A key is `fees_<key id>_<secret>`: the id finds the row, and only the
 * SHA-256 of the secret is stored (the secret has 256 random bits, so a fast hash is enough; a slow
 * password hash would only add latency to every request). Comparison is constant-time, and
 * repeated failures from one client are rate limited.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Queryable } from './db';
import { AppError } from './errors';

export type Scope = 'bills:read' | 'bills:write' | 'webhooks:manage' | 'admin';
export const SCOPES: readonly Scope[] = ['bills:read', 'bills:write', 'webhooks:manage', 'admin'];

export interface Principal {
  key_id: string;
  scopes: Scope[];
}

/** Who calls when authentication is off (development only): may do everything. */
export const ANONYMOUS: Principal = { key_id: 'anonymous', scopes: ['admin'] };

const KEY_FORMAT = /^fees_([a-z2-7]{16})_([A-Za-z0-9_-]{43})$/;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export function generateApiKey(): { key: string; key_id: string; secret_sha256: Buffer } {
  const keyId = Array.from(randomBytes(16), (b) => BASE32[b % 32]).join('');
  const secret = randomBytes(32).toString('base64url');
  return { key: `fees_${keyId}_${secret}`, key_id: keyId, secret_sha256: sha256(secret) };
}

export function hasScope(granted: readonly Scope[], needed: Scope): boolean {
  return granted.includes('admin') || granted.includes(needed);
}

export function requireScope(principal: Principal, needed: Scope): void {
  if (!hasScope(principal.scopes, needed)) {
    throw new AppError('permission_denied', `this API key lacks the ${needed} scope`, { required_scope: needed });
  }
}

export function parseScopes(list: string): Scope[] {
  const scopes = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = scopes.filter((s) => !SCOPES.includes(s as Scope));
  if (scopes.length === 0 || unknown.length > 0) {
    throw new Error(
      `scopes must be a comma-separated list of ${SCOPES.join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`,
    );
  }
  return [...new Set(scopes)] as Scope[];
}

export interface StoredKey {
  key_id: string;
  name: string;
  scopes: Scope[];
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export async function insertApiKey(db: Queryable, name: string, scopes: Scope[]): Promise<{ key: string; key_id: string }> {
  const { key, key_id, secret_sha256 } = generateApiKey();
  await db.query('INSERT INTO api_keys (key_id, name, secret_sha256, scopes) VALUES ($1, $2, $3, $4)', [
    key_id,
    name,
    secret_sha256,
    scopes,
  ]);
  return { key, key_id };
}

export async function listApiKeys(db: Queryable): Promise<StoredKey[]> {
  const { rows } = await db.query<StoredKey>(
    'SELECT key_id, name, scopes, created_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at',
  );
  return rows;
}

/** True when the key existed and was active. */
export async function revokeApiKey(db: Queryable, keyId: string): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL', [keyId]);
  return rowCount === 1;
}

export interface AuthSettings {
  required: boolean;
  /** A revoked key stops working within this long (keys are cached per process). */
  cacheMs: number;
  /** Failed attempts per client within `failureWindowS` before it is refused for that long. */
  maxFailures: number;
  failureWindowS: number;
}

interface CachedKey {
  secret_sha256: Buffer;
  scopes: Scope[];
  active: boolean;
  fetched: number;
}

// Compared against when the key id is unknown, so a miss costs the same as a wrong secret.
const DUMMY_HASH = sha256('no such key');

export class Authenticator {
  private readonly cache = new Map<string, CachedKey>();
  private readonly failures: RateLimiterMemory;

  constructor(
    private readonly db: Queryable,
    readonly settings: AuthSettings,
  ) {
    this.failures = new RateLimiterMemory({ points: settings.maxFailures, duration: settings.failureWindowS });
  }

  /**
   * The caller behind an `Authorization` header, allowed `needed`; throws 401, 403 or 429.
   * `client` identifies the caller for rate limiting (its address).
   */
  async authenticate(authorization: string | undefined, client: string, needed: Scope): Promise<Principal> {
    const principal = await this.identify(authorization, client);
    requireScope(principal, needed);
    return principal;
  }

  /**
   * The caller behind an `Authorization` header, whatever its scopes; throws 401 or 429. The key
   * is checked first, so a valid key always gets in, whatever others sent from its address.
   * Failures count against the address and against the key id presented; past the limit of
   * either, a failed attempt answers 429 until the window passes.
   */
  async identify(authorization: string | undefined, client: string): Promise<Principal> {
    if (!this.settings.required) return ANONYMOUS;
    const { principal, knownKeyId } = await this.verify(authorization);
    if (principal) return principal;
    // Only ids of keys that exist get a counter: the attacker picks the id, not how many keys we have.
    const counters = [`address:${client}`, ...(knownKeyId ? [`key:${knownKeyId}`] : [])];
    const counted = await Promise.all(counters.map((c) => this.failures.penalty(c, 1)));
    const over = counted.filter((r) => r.consumedPoints > this.settings.maxFailures);
    if (over.length > 0) {
      throw new AppError('resource_exhausted', 'too many failed authentication attempts; retry later', {
        retry_after_seconds: Math.ceil(Math.max(...over.map((r) => r.msBeforeNext)) / 1000),
      });
    }
    throw new AppError('unauthenticated', 'a valid API key is required: Authorization: Bearer <key>');
  }

  /** The key's principal when it is valid; else the id it presented, if a key has that id. */
  private async verify(authorization: string | undefined): Promise<{ principal: Principal | null; knownKeyId: string | null }> {
    const match = /^Bearer (\S+)$/i.exec(authorization ?? '');
    const parts = match ? KEY_FORMAT.exec(match[1]) : null;
    if (!parts) return { principal: null, knownKeyId: null };
    const [, keyId, secret] = parts;
    const stored = await this.lookup(keyId);
    const equal = timingSafeEqual(sha256(secret), stored?.secret_sha256 ?? DUMMY_HASH);
    return equal && stored?.active
      ? { principal: { key_id: keyId, scopes: stored.scopes }, knownKeyId: keyId }
      : { principal: null, knownKeyId: stored ? keyId : null };
  }

  private async lookup(keyId: string): Promise<CachedKey | null> {
    const cached = this.cache.get(keyId);
    if (cached && Date.now() - cached.fetched < this.settings.cacheMs) return cached;
    const { rows } = await this.db.query<{ secret_sha256: Buffer; scopes: Scope[]; active: boolean }>(
      `UPDATE api_keys SET last_used_at = now() WHERE key_id = $1
       RETURNING secret_sha256, scopes, revoked_at IS NULL AS active`,
      [keyId],
    );
    const entry = rows[0] ? { ...rows[0], fetched: Date.now() } : null;
    // Unknown ids are not cached: a key created a moment ago must work at once.
    if (entry) this.cache.set(keyId, entry);
    return entry;
  }
}

/**
 * The client address behind an `X-Forwarded-For` list, trusting the last `hops` proxies (the
 * entries they appended, from the right). The left end is whatever the caller wrote itself, so it
 * is never taken unless every proxy on the way is trusted to have rewritten the header.
 */
export function clientFromForwardedFor(header: string | undefined, hops = 1): string | undefined {
  const entries = (header ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  return entries.length >= hops ? entries[entries.length - hops] : undefined;
}
