import type { Client } from '@temporalio/client';
import type { Config } from './config';
import type { Db } from './db';
import type { IdempotencySettings } from './idempotency';

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
