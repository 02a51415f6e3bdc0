/**
 * Glue for running under `encore run`: builds the same Deps the standalone host builds, from
 * Encore's database, and maps domain errors to Encore's APIError. The Encore layer is this file,
 * each service's encore.service.ts, api.ts and bills/db.ts; nothing else imports encore.dev.
 */
import type { ServerResponse } from 'node:http';
import { APIError, ErrCode } from 'encore.dev/api';
import type { SQLDatabase } from 'encore.dev/storage/sqldb';
import { loadConfig } from './config';
import { createPool } from './db';
import type { Deps } from './deps';
import { unexpected } from './errors';
import { connectClient } from '../temporal/client';
import { createWorker } from '../temporal/worker';

const config = loadConfig();
const temporalAddress = () => config.temporal.address ?? `127.0.0.1:${config.temporal.devServerPort}`;

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

export async function startEncoreWorker(database: SQLDatabase): Promise<void> {
  const worker = await createWorker({
    config,
    address: temporalAddress(),
    db: createPool(database.connectionString, config.dbPoolSize),
  });
  await worker.run();
}

/** Raw endpoints write their own answers: failures get the same `{ code, message, details }` body. */
export function sendError(resp: ServerResponse, err: unknown): void {
  const e = unexpected(err);
  resp.writeHead(e.status, { 'content-type': 'application/json' });
  resp.end(JSON.stringify(e.toBody()));
}

/** Runs a use case and rethrows its failure as the APIError Encore renders. */
export async function run<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const e = unexpected(err);
    if (e.code === 'internal') throw err; // Encore logs it and answers 500 itself
    throw new APIError(e.code as ErrCode, e.message, undefined, e.details ?? undefined);
  }
}
