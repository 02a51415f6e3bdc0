/**
 * The standalone host as it is built for real (host/server.ts: its routes, schemas, validator and
 * error bodies), on stub dependencies (stub-deps.ts): a request answered 503 "reached the stub"
 * passed every check made before any I/O. No Postgres, no Temporal: for unit tests of what the
 * host refuses and how it says so.
 */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../host/server';
import { ensureApi } from '../../scripts/build-api';
import { stubDeps } from './stub-deps';

export { REACHED_THE_STUB } from './stub-deps';

export function stubServer(env: Record<string, string> = {}): FastifyInstance {
  // Unit tests run without `npm run build`: the schemas are built here when missing or out of date.
  ensureApi(path.resolve(__dirname, '..', '..'));
  return buildServer(stubDeps(env), { logLevel: 'silent', checks: {} });
}

export interface Answer {
  status: number;
  body: { code: string; message: string; details: Record<string, unknown> | null };
}

/** One request with an idempotency key, its body sent as JSON (a string is sent as it is). */
export async function send(app: FastifyInstance, method: string, url: string, body?: unknown): Promise<Answer> {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { 'idempotency-key': 'stub-key', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: res.json() };
}
