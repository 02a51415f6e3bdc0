/**
 * Once per test run: a fresh database on the machine's Postgres, the real Temporal dev server on a
 * free port, and one workflow bundle. Tests find them through FEES_TEST_* environment variables.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadConfig } from '../../core/config';
import { DEV_SERVER_ARGS, findTemporalCli } from '../../host/temporal-dev';
import { WORKFLOWS_PATH } from '../../temporal/worker';

export const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh database on the machine's Postgres; returns its URL. */
export async function createDatabase(name: string): Promise<string> {
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

export default async function globalSetup(): Promise<void> {
  const dbName = `fees_test_${process.pid}_${Date.now()}`;
  const url = await createDatabase(dbName);

  const cli = findTemporalCli(loadConfig({}));
  if (!cli) throw new Error('Tests need the Temporal CLI: see README (go install ...) or set TEMPORAL_CLI_PATH');
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: cli }, ip: '127.0.0.1', extraArgs: DEV_SERVER_ARGS },
  });

  // Everything a run writes to disk goes in here; global teardown removes it (helpers/tmp.ts).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fees-test-'));
  process.env.FEES_TEST_TMP = dir;
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  writeFileSync(bundlePath, code);

  process.env.FEES_TEST_DATABASE_URL = url;
  process.env.FEES_TEST_DATABASE_NAME = dbName;
  process.env.FEES_TEST_TEMPORAL_ADDRESS = env.address;
  process.env.FEES_TEST_BUNDLE = bundlePath;
  (globalThis as Record<string, unknown>).__feesTestEnv = env;
}

const quietLogger = {
  log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined,
  warn: (m: string) => console.warn(m), error: (m: string) => console.error(m),
};
