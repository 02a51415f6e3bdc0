/**
 * Structured JSON logs (pino) for code outside a request: the worker's activities and start-up.
 * Secrets that could ride along in a logged object are redacted by path.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type { DestinationStream, Logger };

export const REDACT_PATHS = [
  'password',
  '*.password',
  'pass',
  '*.pass',
  'apiKey',
  '*.apiKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'smtp.url',
  'databaseUrl',
];

export function createLogger(level: string, bindings: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'fees-api', ...bindings }, redact: REDACT_PATHS };
  return destination ? pino(options, destination) : pino(options);
}
