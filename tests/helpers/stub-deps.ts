/**
 * Dependencies that answer 503 "reached the stub" to their first use: a server built on them (see
 * stub-server.ts) answers every request that passed its checks made before any I/O with that.
 */
import { loadConfig } from '../../core/config';
import type { Deps } from '../../core/deps';
import { AppError } from '../../core/errors';

export const REACHED_THE_STUB = 'reached the stub';

const refuseEverything = (): never => {
  throw new AppError('unavailable', REACHED_THE_STUB);
};
const stub = <T>() => new Proxy({}, { get: refuseEverything }) as T;

export function stubDeps(env: Record<string, string> = {}): Deps {
  return { db: stub(), temporal: stub(), config: loadConfig({ LOG_LEVEL: 'silent', ...env }) };
}
