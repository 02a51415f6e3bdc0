/**
 * A passing test run is quiet: the service's, the SDK's and child processes' log lines go to files
 * of the test file's own folder (`<run>/logs/<file>/*.log`, set by helpers/per-file.ts), the dev
 * server's to the run's (`<run>/logs/dev-server.log`), and helpers/log-reporter.js prints them only
 * when a test file fails.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import pino from 'pino';
import type { DestinationStream } from '../../core/log';

export type RunLog = 'service' | 'temporal-sdk' | 'dev-server' | 'child-processes' | 'test-notes';

export function runLogPath(name: RunLog): string {
  const dir = process.env.FEES_TEST_LOG_DIR ?? path.join(process.env.FEES_TEST_TMP ?? path.resolve('.data'), 'logs');
  mkdirSync(dir, { recursive: true });
  return path.join(dir, `${name}.log`);
}

/** JSON lines appended synchronously, so the reporter's slice of a failing file is complete. */
export function runLogStream(name: RunLog): DestinationStream {
  return pino.destination({ dest: runLogPath(name), sync: true, append: true });
}

/** The Temporal SDK's own lines (activity failures, worker state) as one line each. */
export function sdkRunLogger(level: 'WARN' | 'INFO' = 'WARN'): DefaultLogger {
  const file = runLogPath('temporal-sdk');
  return new DefaultLogger(level, (entry: LogEntry) => {
    const at = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
    appendFileSync(file, `${at} [${entry.level}] ${entry.message} ${JSON.stringify(entry.meta ?? {}, errorsAsText)}\n`);
  });
}

const errorsAsText = (_key: string, value: unknown) => (value instanceof Error ? `${value.name}: ${value.message}` : value);

/** An activity context for calling one activity directly, its SDK log lines in the run's log. */
export function quietActivityEnvironment(info?: ConstructorParameters<typeof MockActivityEnvironment>[0]): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: sdkRunLogger() });
}

/** A note for the reader of a failing run (a random seed, say), printed only if its file fails. */
export function noteForFailure(line: string): void {
  appendFileSync(runLogPath('test-notes'), `${line}\n`);
}
