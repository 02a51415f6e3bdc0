/**
 * Idempotency keys, stored in Postgres with a fingerprint of the request. The first request with
 * a key runs; a repeat of the same request gets the stored response; a different request with the
 * same key is refused; a duplicate arriving while the first is in flight waits for its response.
 *
 * The effects themselves are idempotent too (a created bill's id, a line item's id and a staged
 * batch's id and update id all derive from the key), so a key taken over from a crashed request
 * can never apply an effect twice.
 *
 * That is also why the key's own writes commit asynchronously (`synchronous_commit` off for their
 * transaction, set in the statement itself): they are visible to every other request at once, as
 * always, but a Postgres crash may lose the last few of them (a later synchronous commit, such as
 * the ledger write of the same request, flushes them with it). A lost record only means a retry
 * runs its use case again, and every use case under a key is idempotent on its own: adds and
 * batches find their rows by the ids derived from the key (and refuse other content under them),
 * a created bill is found by its derived id and request fingerprint, close and cancel are no-ops
 * the second time, and an invoice retry restarts only a failed post-process. Money is written by
 * the ledger's own transactions, which stay synchronous. Each add saves two waits for a disk flush.
 */
import { createHash, randomUUID } from 'node:crypto';
import { canonicalJson } from './canonical-json';
import type { Db } from './db';
import { idempotentReplays } from './metrics';
import { AppError, invalidArgument } from './errors';

export interface IdempotencySettings {
  ttlHours: number;
  lockMs: number;
  /** How long a duplicate waits for the in-flight original before answering 409 aborted. */
  waitMs: number;
}

export const IDEMPOTENCY_HEADERS = ['X-Idempotency-Key', 'Idempotency-Key'] as const;

/** Either header; a key is 1-255 visible ASCII characters. */
export function pickIdempotencyKey(...candidates: (string | undefined)[]): string | undefined {
  const key = candidates.find((c) => c !== undefined && c !== '');
  if (key === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw invalidArgument('idempotency key must be 1-255 visible ASCII characters', { field: 'X-Idempotency-Key' });
  }
  return key;
}

export function fingerprint(operation: string, input: unknown): string {
  return createHash('sha256').update(operation).update('\n').update(canonicalJson(input)).digest('hex');
}

/** A CTE that turns off the flush-on-commit of the statement's own transaction (see above). */
const ASYNC_COMMIT = `async_commit AS (SELECT set_config('synchronous_commit', 'off', true))`;

interface KeyRow {
  fingerprint: string;
  state: 'in_flight' | 'completed';
  response_body: unknown;
  locked: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An idempotency key as sent, and whose it is: the caller's API key id (the shared 'anonymous'
 * scope when authentication is off). With the operation, that is the key's lane: another caller's
 * key, or the same key on another endpoint, is another request.
 */
export interface IdempotencyKey {
  key: string;
  caller: string;
}

/** The key a request sent (either header), in its caller's lane. */
export function idempotencyKeyOf(caller: string, ...candidates: (string | undefined)[]): IdempotencyKey | undefined {
  const key = pickIdempotencyKey(...candidates);
  return key === undefined ? undefined : { key, caller };
}

/**
 * What ids derived from a key are derived from: the key in its caller's lane. Keys hold no newline
 * (pickIdempotencyKey), so one caller's seed never equals another's, nor a derived seed such as a
 * batch item's `seed \n #i`.
 */
export const seedOf = (k: IdempotencyKey) => `${k.key}\n@${k.caller}`;

interface Lane {
  scope: string;
  operation: string;
  key: string;
}

/** Claims the key for `owner`: inserts it, or reclaims it once expired. */
async function claim(db: Db, lane: Lane, fp: string, owner: string, s: IdempotencySettings): Promise<boolean> {
  const { rowCount } = await db.query({
    // Named: prepared once per connection, not parsed and planned on every request (two statements of every keyed write).
    name: 'idempotency_claim',
    text: `WITH ${ASYNC_COMMIT}
     INSERT INTO idempotency_keys (scope, operation, key, fingerprint, state, owner, locked_until, expires_at)
     SELECT $1, $2, $3, $4, 'in_flight', $5, now() + $6 * interval '1 millisecond', now() + $7 * interval '1 hour' FROM async_commit
     ON CONFLICT (scope, operation, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight',
       response_status = NULL, response_body = NULL, created_at = now(), owner = EXCLUDED.owner,
       locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at
     WHERE idempotency_keys.expires_at < now()`,
    values: [lane.scope, lane.operation, lane.key, fp, owner, s.lockMs, s.ttlHours],
  });
  return rowCount === 1;
}

/** Takes over a key whose holder outlived its lock (crashed mid-request). */
async function takeOver(db: Db, lane: Lane, fp: string, owner: string, s: IdempotencySettings): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE idempotency_keys SET owner = $5, locked_until = now() + $6 * interval '1 millisecond'
     WHERE scope = $1 AND operation = $2 AND key = $3 AND fingerprint = $4 AND state = 'in_flight' AND locked_until <= now()`,
    [lane.scope, lane.operation, lane.key, fp, owner, s.lockMs],
  );
  return rowCount === 1;
}

async function readKey(db: Db, lane: Lane): Promise<KeyRow | undefined> {
  const { rows } = await db.query<KeyRow>(
    `SELECT fingerprint, state, response_body, locked_until > now() AS locked
     FROM idempotency_keys WHERE scope = $1 AND operation = $2 AND key = $3 AND expires_at > now()`,
    [lane.scope, lane.operation, lane.key],
  );
  return rows[0];
}

/**
 * Runs `run` once per request: the first with a key runs, a repeat of the same request gets the
 * stored response, a different request in the same lane is refused, and a duplicate arriving while
 * the first is in flight waits for its response. `run` gets the seed to derive ids from (see
 * seedOf), or undefined without a key (the request is new by definition).
 */
export async function idempotent<T>(
  db: Db,
  s: IdempotencySettings,
  request: { key: IdempotencyKey | undefined; operation: string; fingerprint: string },
  run: (seed: string | undefined) => Promise<T>,
): Promise<T> {
  const { key, operation, fingerprint: fp } = request;
  if (key === undefined) return run(undefined);
  const lane: Lane = { scope: key.caller, operation, key: key.key };
  // Only the current holder may complete or release the key: a request that outlived its lock
  // and was taken over must not overwrite or delete its successor's claim.
  const owner = randomUUID();
  const giveUpAt = Date.now() + s.waitMs;
  for (let pause = 20; ; pause = Math.min(pause * 2, 250)) {
    if (await claim(db, lane, fp, owner, s)) break;
    const row = await readKey(db, lane);
    if (row === undefined) continue; // released by a failed original: claim it
    if (row.fingerprint !== fp) {
      throw invalidArgument('this idempotency key was already used with a different request', {
        field: 'X-Idempotency-Key',
      });
    }
    if (row.state === 'completed') {
      idempotentReplays.inc();
      return row.response_body as T;
    }
    if (!row.locked && (await takeOver(db, lane, fp, owner, s))) break;
    if (Date.now() >= giveUpAt) {
      throw new AppError('aborted', 'a request with this idempotency key is still in progress; retry later');
    }
    await sleep(pause);
  }

  let result: T;
  try {
    result = await run(seedOf(key));
  } catch (err) {
    // Failed requests are not remembered: the client may retry them with the same key.
    await db
      .query(`DELETE FROM idempotency_keys WHERE scope = $1 AND operation = $2 AND key = $3 AND owner = $4 AND state = 'in_flight'`, [
        lane.scope,
        lane.operation,
        lane.key,
        owner,
      ])
      .catch(() => undefined);
    throw err;
  }
  await db.query({
    name: 'idempotency_complete',
    text: `WITH ${ASYNC_COMMIT}
     UPDATE idempotency_keys SET state = 'completed', response_status = 200, response_body = $5, locked_until = NULL
     FROM async_commit WHERE scope = $1 AND operation = $2 AND key = $3 AND owner = $4 AND state = 'in_flight'`,
    values: [lane.scope, lane.operation, lane.key, owner, JSON.stringify(result)],
  });
  return result;
}

/** Deletes expired keys in small batches; run periodically by the API process. */
export async function pruneExpiredKeys(db: Db, batch = 1000): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM idempotency_keys WHERE (scope, operation, key) IN (
       SELECT scope, operation, key FROM idempotency_keys WHERE expires_at < now() LIMIT $1)
     AND expires_at < now()`,
    [batch],
  );
  return rowCount ?? 0;
}
