/**
 * Once per test run: the migrated template every test file's database is copied from
 * (helpers/databases.ts), the real Temporal dev server on a free port, and one workflow bundle.
 * Tests find them through FEES_TEST_* environment variables.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadConfig } from '../../core/config';
import { createPool, migrate } from '../../core/db';
import { DEV_SERVER_ARGS, findTemporalCli } from '../../host/temporal-dev';
import { WORKFLOWS_PATH } from '../../temporal/worker';
import { ensureApi } from '../../scripts/build-api';
import { createDatabase } from './databases';
import { chooseSuiteEncryption } from './encryption';
import { runLogPath } from './run-logs';
import { freePort } from './ports';

export interface DevServer {
  address: string;
  teardown: () => Promise<void>;
}

/**
 * The Temporal CLI's dev server (in memory, no UI) with its output in the run's log file rather
 * than the test output. Started here, not through the SDK's test environment, which lets the
 * server write to our terminal.
 */
async function startDevServer(cli: string): Promise<DevServer> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const logFile = runLogPath('dev-server');
  const out = openSync(logFile, 'a');
  const child = spawn(
    cli,
    [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--headless',
      // As the SDK's test environment does: no call home for a version check.
      '--dynamic-config-value',
      'frontend.enableServerVersionCheck=false',
      ...DEV_SERVER_ARGS,
    ],
    {
      stdio: ['ignore', out, out],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const code = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]);
    if (code !== undefined) throw new Error(`the Temporal dev server exited (${code}):\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.withDeadline(Date.now() + 2000, () => connection.workflowService.getSystemInfo({}));
        break;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the Temporal dev server did not answer at ${address} within 60 s: ${(err as Error).message}`);
      }
    }
  }
  return {
    address,
    teardown: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export default async function globalSetup(): Promise<void> {
  // The request schemas and OpenAPI document every stack serves (npm test builds them first; a run
  // of one file may not have): built here when missing or out of date.
  ensureApi(path.resolve(__dirname, '..', '..'));
  // Everything a run writes to disk goes in here; global teardown removes it (helpers/tmp.ts).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fees-test-'));
  process.env.FEES_TEST_TMP = dir;

  // Migrated once; each test file copies it (helpers/per-file.ts). The run's own copy serves
  // scripts that use the set-up outside jest (the history recorder).
  const prefix = `fees_test_${process.pid}_${Date.now()}`;
  const template = `${prefix}_template`;
  const pool = createPool(await createDatabase(template), 2);
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  const url = await createDatabase(`${prefix}_run`, template);

  // TEST_TEMPORAL_ADDRESS: a Temporal of the caller's (`npm run test:cluster`: the real server on
  // Postgres, its namespace and search attributes set up) instead of a dev server of the run's own.
  const external = process.env.TEST_TEMPORAL_ADDRESS;
  const cli = findTemporalCli(loadConfig());
  if (!cli && !external) throw new Error('Tests need the Temporal CLI: see docs/development.md (go install ...) or set TEMPORAL_CLI_PATH');
  const devServer: DevServer = external ? { address: external, teardown: async () => undefined } : await startDevServer(cli!);

  const bundlePath = path.join(dir, 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  writeFileSync(bundlePath, code);

  chooseSuiteEncryption();
  process.env.FEES_TEST_DATABASE_URL = url;
  process.env.FEES_TEST_DATABASE_PREFIX = prefix;
  process.env.FEES_TEST_DATABASE_TEMPLATE = template;
  process.env.FEES_TEST_TEMPORAL_ADDRESS = devServer.address;
  process.env.FEES_TEST_BUNDLE = bundlePath;
  (globalThis as Record<string, unknown>).__feesTestEnv = devServer;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
