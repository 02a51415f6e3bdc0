/**
 * The Temporal dev server of `npm start`: the real Temporal CLI's `server start-dev`, state in
 * DATA_DIR so bills and their timers survive a restart.
 */
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Config } from '../core/config';
import { temporalAnswers } from '../core/temporal';
import { TEMPORAL_CLI, findGoTool, howToInstall } from './go-tools';
import { stopProcess } from './processes';
import { addMissingSearchAttributes, devServerSearchAttributeArgs } from '../temporal/search-attributes';

/**
 * Flags of the dev server: Update-with-Start (a multi-operation request) on, and SQLite in WAL
 * mode, still synced on every commit (no durability given up); measured with `npm run bench`,
 * WAL lifts the update rate the dev server allows from 40 to about 76 per second on 2 cores.
 * Eager activity dispatch on, as production clusters have it: the benchmark measures it beside
 * local activities (docs/performance.md), and the close and invoice activities save a poll.
 */
export const DEV_SERVER_ARGS = [
  '--dynamic-config-value',
  'frontend.enableExecuteMultiOperation=true',
  '--dynamic-config-value',
  'system.enableActivityEagerExecution=true',
  '--sqlite-pragma',
  'journal_mode=wal',
  // The search attributes the workflows set (temporal/search-attributes.ts).
  ...devServerSearchAttributeArgs(),
];

const HOW_TO_INSTALL = `${howToInstall(TEMPORAL_CLI)}
  - or point the service at a running Temporal: TEMPORAL_ADDRESS=host:7233`;

/**
 * Where the `temporal` binary is, in this order: TEMPORAL_CLI_PATH, PATH, Go's bin directory
 * (building it with `go install` when Go is present), else undefined: the SDK's cached download.
 */
export function findTemporalCli(
  config: Pick<Config, 'temporal' | 'dataDir'>,
  log: (line: string) => void = console.log,
): string | undefined {
  return findGoTool(TEMPORAL_CLI, config.temporal.cliPath, path.join(config.dataDir, 'bin'), log);
}

export interface RunningTemporal {
  address: string;
  uiUrl: string;
  stop: () => Promise<void>;
}

/**
 * Ends the dev server a killed run left on our state file (found through Linux /proc). A server
 * on the same port with other state is somebody else's: it is used, never stopped.
 */
async function stopOrphanedDevServer(dbFilename: string): Promise<void> {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return; // no /proc (macOS): the SDK's teardown is all there is
  }
  for (const pid of pids) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const db = args.indexOf('--db-filename');
    if (args.includes('start-dev') && db > 0 && args[db + 1] === dbFilename) await stopProcess(Number(pid), 'SIGTERM', 10_000);
  }
}

/**
 * The dev server registers its --search-attribute flags only when it creates the namespace: a state
 * file from a release before them, or a server left running by one, gets them added here.
 */
async function registerSearchAttributes(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const added = await addMissingSearchAttributes(connection, namespace);
    if (added.length > 0) console.log(`Registered search attributes on the dev server: ${added.join(', ')}.`);
  } finally {
    await connection.close();
  }
}

export async function startTemporalDevServer(config: Config): Promise<RunningTemporal> {
  const { devServerPort: port, devServerUiPort: uiPort, namespace } = config.temporal;
  const address = `127.0.0.1:${port}`;
  const dbFilename = path.join(config.dataDir, 'temporal.db');
  if (await temporalAnswers(address)) {
    // Adopt it, as we adopt a Postgres left running: if it holds our state file a second one could
    // not start anyway, and then it stops with us.
    console.log(`A Temporal server already listens at ${address}: using it.`);
    await registerSearchAttributes(address, namespace);
    return { address, uiUrl: `http://127.0.0.1:${uiPort}`, stop: () => stopOrphanedDevServer(dbFilename) };
  }
  const cli = findTemporalCli(config);
  mkdirSync(config.dataDir, { recursive: true });
  let env: TestWorkflowEnvironment;
  try {
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: cli ? { type: 'existing-path', path: cli } : { type: 'cached-download' },
        dbFilename,
        ip: '127.0.0.1',
        port,
        ui: true,
        uiPort,
        namespace,
        extraArgs: DEV_SERVER_ARGS,
      },
    });
  } catch (err) {
    if (cli) throw err;
    throw new Error(`${HOW_TO_INSTALL}\n(The SDK's download failed: ${(err as Error).message})`);
  }
  await registerSearchAttributes(address, namespace);
  return {
    address,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    // The SDK's teardown logs and swallows its failures: a bench run once left a dev server behind
    // its stopped host. Whatever still runs on our state file afterwards is ended here.
    stop: async () => {
      await env.teardown();
      await stopOrphanedDevServer(dbFilename);
    },
  };
}
