/** Starting the service's processes for the benchmark and the fault drills. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { loadConfig, type Config } from '../core/config';
import { startEmbeddedPostgres, type RunningPostgres } from '../host/postgres';
import { startTemporalDevServer, type RunningTemporal } from '../host/temporal-dev';
import path from 'node:path';

export const root = path.resolve(__dirname, '..');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

/** Processes started here, killed if this process ends without stopping them (a crash, ^C). */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/**
 * A temporary DATA_DIR. Readable by others: as root, the embedded Postgres runs as `postgres`
 * and keeps its data inside it only if it can reach it (host/postgres.ts).
 */
export function tempDataDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export interface HostProcess {
  child: ChildProcess;
  pid: number;
  /** Everything it printed so far. */
  output: () => string;
  /** SIGTERM, and wait for the exit (an ordered drain). */
  stop: () => Promise<void>;
  /** SIGKILL, and wait for the exit (a crash). */
  kill: () => Promise<void>;
}

/**
 * The node flags its npm script runs a mode with (`npm start`, `npm run worker`): the heap limit,
 * which sizes the worker's workflow cache, so measured processes are the ones users run.
 */
export function scriptNodeArgs(mode: 'all' | 'api' | 'worker'): string[] {
  const scripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const script = scripts[mode === 'all' ? 'start' : mode] ?? '';
  return script.match(/--max-old-space-size=\d+/g) ?? [];
}

/** `host/main.ts <mode>` as its own process, resolved once it says it is up. */
export function spawnHost(mode: 'all' | 'api' | 'worker', env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<HostProcess> {
  // Without a supervisor (it is there for a terminal's Ctrl-C): the pid we measure and signal is
  // the service itself, not an idle parent.
  const unsupervised = { ...env, FEES_SUPERVISED: '1' };
  return spawnScript('host/main.ts', [mode], unsupervised, [...scriptNodeArgs(mode), ...nodeArgs], 'is up');
}

/** A TypeScript file of this repository as its own process, resolved once it prints `ready`. */
export async function spawnScript(
  file: string,
  scriptArgs: string[],
  env: NodeJS.ProcessEnv,
  nodeArgs: string[],
  ready: string,
): Promise<HostProcess> {
  const args = [...nodeArgs, '--import', 'tsx', file, ...scriptArgs];
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // BENCH_SERVICE_LOG=<file>: the process's output goes there too (with BENCH_NODE_ARGS=--trace-gc, its GC trace).
  const log = process.env.BENCH_SERVICE_LOG;
  if (log) appendFileSync(log, `=== ${file} ${scriptArgs.join(' ')} started ${new Date().toISOString()}\n`);
  const keep = (d: Buffer) => {
    out += d;
    if (log) appendFileSync(log, d);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => children.delete(child));
  const deadline = Date.now() + 120_000;
  while (!out.includes(ready)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${file} ${scriptArgs.join(' ')} did not start:\n${out}`);
    }
    await sleep(100);
  }
  const signal = async (s: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(s);
    await exited;
  };
  return { child, pid: child.pid!, output: () => out, stop: () => signal('SIGTERM'), kill: () => signal('SIGKILL') };
}

/**
 * The service as separate processes on embedded servers this process runs: Postgres and the
 * Temporal dev server (state in a temporary DATA_DIR), the worker and the API each on their own.
 * Every part can be stopped and started again (the fault drills), and each reports its own RSS.
 */
export interface SplitStack {
  config: Config;
  env: NodeJS.ProcessEnv;
  url: string;
  dataDir: string;
  postgres: RunningPostgres;
  temporal: RunningTemporal;
  api: HostProcess;
  worker: HostProcess;
}

/**
 * A killed worker's workflows move on to another within about a second, not ten (the drills kill
 * workers on purpose; the benchmark never does).
 */
const FAST_FAILOVER_ENV = {
  WORKER_STICKY_QUEUE_TIMEOUT_MS: '1000',
  TEMPORAL_WORKFLOW_TASK_TIMEOUT_MS: '3000',
  BILL_LOCAL_ACTIVITY_TIMEOUT_MS: '2000',
};

export async function startSplitStack(prefix: string, extraEnv: Record<string, string> = {}): Promise<SplitStack> {
  const dataDir = tempDataDir(prefix);
  const port = await freePort();
  const base = {
    DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(await freePort()),
    TEMPORAL_DEV_PORT: String(await freePort()),
    TEMPORAL_DEV_UI_PORT: String(await freePort()),
  };
  const config = loadConfig({ ...process.env, ...base, DATABASE_URL: undefined, TEMPORAL_ADDRESS: undefined });
  const postgres = await startEmbeddedPostgres(config);
  const temporal = await startTemporalDevServer(config);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...base,
    DATABASE_URL: postgres.url,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: `${prefix}${randomUUID().slice(0, 8)}`,
    PORT: String(port),
    WORKER_PORT: '0',
    LOG_LEVEL: 'warn',
    ...FAST_FAILOVER_ENV,
    ...extraEnv,
  };
  // The worker first: it migrates the database before the API takes requests.
  const worker = await spawnHost('worker', env);
  const api = await spawnHost('api', env);
  return { config, env, dataDir, url: `http://127.0.0.1:${port}`, postgres, temporal, api, worker };
}

export async function stopSplitStack(s: SplitStack): Promise<void> {
  await Promise.all([s.api.stop(), s.worker.stop()]);
  await s.temporal.stop();
  await s.postgres.stop();
  rmSync(s.dataDir, { recursive: true, force: true });
}
