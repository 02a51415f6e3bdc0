import type { Client } from '@temporalio/client';
import type { Config } from './config';
import type { Db } from './db';
import { idempotent, type IdempotencyKey, type IdempotencySettings } from './idempotency';

/** What every endpoint needs, built once per process by whichever host runs it. */
export interface Deps {
  db: Db;
  temporal: Client;
  config: Config;
}

export function idempotencySettings(config: Config): IdempotencySettings {
  return {
    ttlHours: config.idempotencyTtlHours,
    lockMs: config.idempotencyLockMs,
    waitMs: Math.min(config.updateTimeoutMs, 10_000),
  };
}

/**
 * Runs a use case under the request's idempotency key, in the lane of its caller and `operation`
 * (the endpoint's method and route); `fingerprint` identifies the request. `run` gets the seed of
 * the ids it derives from the key (undefined without one).
 */
export function idempotently<T>(
  deps: Deps,
  key: IdempotencyKey | undefined,
  operation: string,
  fingerprint: string,
  run: (seed: string | undefined) => Promise<T>,
): Promise<T> {
  return idempotent(deps.db, idempotencySettings(deps.config), { key, operation, fingerprint }, run);
}
