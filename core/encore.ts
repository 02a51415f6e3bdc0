/**
 * Glue for running under `encore run`: builds the same Deps the standalone host builds, from
 * Encore's database, authenticates like the standalone host, and maps domain errors to Encore's
 * APIError. The Encore layer is this file, each service's encore.service.ts and api.ts,
 * bills/db.ts and bills/gateway.ts; nothing else imports encore.dev. The worker under `encore run`
 * starts in temporal/encore.service.ts, so this file imports nothing above core/.
 */
import type { ServerResponse } from 'node:http';
import { APIError, ErrCode } from 'encore.dev/api';
import { getAuthData } from 'encore.dev/internal/codegen/auth';
import type { SQLDatabase } from 'encore.dev/storage/sqldb';
import { ANONYMOUS, Authenticator, requireScope, type Principal, type Scope } from './auth';
import { loadConfig } from './config';
import { createPool } from './db';
import type { Deps } from './deps';
import { unexpected } from './errors';
import { connectClient } from './temporal';

/** The configuration of this Encore process, read once. */
export const config = loadConfig();
/** The configured Temporal, or the dev server `npm run infra` starts. */
export const temporalAddress = () => config.temporal.address ?? `127.0.0.1:${config.temporal.devServerPort}`;

let deps: Promise<Deps> | undefined;

/** One pool and one Temporal client per process, created on first use. */
export function encoreDeps(database: SQLDatabase): Promise<Deps> {
  deps ??= connectClient(config, temporalAddress()).then((temporal) => ({
    db: createPool(database.connectionString, config.dbPoolSize),
    temporal,
    config,
  }));
  return deps;
}

/** Raw endpoints write their own answers: failures get the same `{ code, message, details }` body. */
export function sendError(resp: ServerResponse, err: unknown): void {
  const e = unexpected(err);
  resp.writeHead(e.status, { 'content-type': 'application/json' });
  resp.end(JSON.stringify(e.toBody()));
}

/** What the Encore auth handler hands to endpoints: Encore wants a `userID`. */
export interface AuthData {
  userID: string;
  scopes: Scope[];
}

let authenticator: Authenticator | undefined;

/**
 * How many X-Forwarded-For entries, from the right, the proxies in front of Encore's gateway
 * wrote: TRUST_PROXY's hop count, or 1 when it lists the proxies (the gateway sees no peer address
 * to check against the list). Undefined when TRUST_PROXY is off: then the header is the caller's.
 */
export const trustedHops = (): number | undefined =>
  config.trustProxy === false ? undefined : typeof config.trustProxy === 'number' ? config.trustProxy : 1;

/**
 * The auth handler's rules are the standalone host's: a valid, unrevoked key (401 otherwise, and
 * 429 after repeated failures from one client). Scopes are checked per endpoint by `run`.
 */
export async function identify(database: SQLDatabase, authorization: string | undefined, client: string): Promise<AuthData> {
  const { db } = await encoreDeps(database);
  authenticator ??= new Authenticator(db, config.auth);
  try {
    const principal = await authenticator.identify(authorization, client);
    return { userID: principal.key_id, scopes: principal.scopes };
  } catch (err) {
    throw toAPIError(err);
  }
}

function toAPIError(err: unknown): unknown {
  const e = unexpected(err);
  if (e.code === 'internal') return err; // Encore logs it and answers 500 itself
  return new APIError(e.code as ErrCode, e.message, undefined, e.details ?? undefined);
}

/** Checks the caller's scope, as the standalone host's route guard does; returns the caller. */
export function checkScope(scope: Scope): Principal {
  const data = getAuthData<AuthData>();
  const principal: Principal = data ? { key_id: data.userID, scopes: data.scopes } : ANONYMOUS;
  if (config.auth.required && !data) throw new APIError(ErrCode.Unauthenticated, 'a valid API key is required');
  try {
    requireScope(principal, scope);
  } catch (err) {
    throw toAPIError(err);
  }
  return principal;
}

/**
 * Runs a use case for a caller with `scope` (handed the caller, whose lane its idempotency keys
 * are in), and rethrows its failure as the APIError Encore renders.
 */
export async function run<T>(scope: Scope, fn: (caller: Principal) => Promise<T>): Promise<T> {
  const caller = checkScope(scope);
  try {
    return await fn(caller);
  } catch (err) {
    throw toAPIError(err);
  }
}
