/**
 * `npm run cluster`: the service on the topology teams deploy, on this machine. The Temporal server
 * (not the dev server) with persistence and visibility on a Postgres of its own, our own Postgres
 * apart, the Temporal set-up job (namespace, search attributes) and our migration job run once,
 * then two API and two worker processes, each its own OS process. In the foreground like
 * `npm start`; Ctrl-C stops it all in order: the APIs, the workers, Temporal, then the databases.
 * State in DATA_DIR/cluster survives a restart. The chaos drills and the benchmark start the same
 * stack through startCluster().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { config as loadDotEnv } from 'dotenv';
import { ConfigError, loadConfig, type Config } from '../core/config';
import { appRoot } from '../core/app-root';
import { TEMPORAL_SERVER, TEMPORAL_SQL_TOOL, findGoTool, howToInstall } from './go-tools';
import { startEmbeddedPostgres, postgresDataDir, type RunningPostgres } from './postgres';
import { PROCESS_COMMANDS, type Role } from './process-commands';
import { stopProcess } from './processes';
import { prepareTemporalDatabases, startTemporalServer, type RunningTemporalServer } from './temporal-server';

/** One of our processes: started, killed and started again by the drills. */
export interface ServiceProcess {
  name: string;
  role: Role;
  /** Where its HTTP server listens (the API, a worker's probes). */
  url: string;
  pid: () => number | undefined;
  running: () => boolean;
  start: () => Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop: (graceMs?: number) => Promise<void>;
  /** Resolves with its exit code (null after a signal) when the current run has exited. */
  exited: () => Promise<number | null>;
  kill: () => void;
}

export interface Cluster {
  config: Config;
  dir: string;
  temporalAddress: string;
  databaseUrl: string;
  apis: ServiceProcess[];
  workers: ServiceProcess[];
  temporal: { pid: () => number; stop: () => Promise<void>; start: () => Promise<void>; kill: () => void };
  postgres: { stop: () => Promise<void>; start: () => Promise<void> };
  stop: () => Promise<void>;
}

export interface ClusterOptions {
  /** Each process's output, a line at a time (the CLI prefixes it with the process's name). */
  output?: (name: string, line: string) => void;
  log?: (line: string) => void;
  /** Extra environment for our processes (the drills shorten timeouts). */
  env?: Record<string, string>;
  apis?: number;
  workers?: number;
}

/** Every port the cluster listens on, with the variable that moves it: one clear line when one is taken. */
function portsOf(config: Config, apis: number, workers: number): [number, string][] {
  const c = config.cluster;
  return [
    ...Array.from(
      { length: apis + workers },
      (_, i) => [config.port + i, `PORT (the cluster uses PORT to PORT+${apis + workers - 1})`] as [number, string],
    ),
    [config.embeddedPostgresPort, 'EMBEDDED_PG_PORT'],
    [c.temporalPostgresPort, 'CLUSTER_TEMPORAL_PG_PORT'],
    ...[0, 1, 2, 3, 10].map(
      (d) => [c.temporalPort + d, `CLUSTER_TEMPORAL_PORT (Temporal uses it, the next three and +10)`] as [number, string],
    ),
    ...[0, 1, 2, 3].map((d) => [c.membershipPort + d, 'CLUSTER_MEMBERSHIP_PORT (and the next three)'] as [number, string]),
    [c.metricsPort, 'CLUSTER_TEMPORAL_METRICS_PORT'],
  ];
}

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

async function checkPorts(config: Config, apis: number, workers: number): Promise<void> {
  for (const [port, variable] of portsOf(config, apis, workers)) {
    if (!(await portFree(port, '127.0.0.1'))) {
      throw new Error(`port ${port} is taken by another process: stop it, or move the cluster with ${variable}`);
    }
  }
}

/**
 * Ports for a cluster beside whatever else runs on this machine (the drills, a test run): a block
 * nothing listens on now, below Linux's ephemeral range (32768 up), so no outgoing connection takes
 * one of them meanwhile. The variables to give loadConfig.
 */
export async function freeClusterPorts(apis = 2, workers = 2): Promise<Record<string, string>> {
  if (apis + workers > 8) throw new Error('freeClusterPorts: at most 8 API and worker processes');
  for (let attempt = 0; attempt < 50; attempt++) {
    // PORT.. +7 ours, +8..+10 the databases and metrics, +12..+15 and +22 Temporal, +24..+27 membership.
    const base = 20_000 + 32 * Math.floor(Math.random() * 350);
    const env = {
      PORT: String(base),
      EMBEDDED_PG_PORT: String(base + 8),
      CLUSTER_TEMPORAL_PG_PORT: String(base + 9),
      CLUSTER_TEMPORAL_METRICS_PORT: String(base + 10),
      CLUSTER_TEMPORAL_PORT: String(base + 12),
      CLUSTER_MEMBERSHIP_PORT: String(base + 24),
    };
    const taken = await checkPorts(loadConfig(env), apis, workers).then(
      () => false,
      () => true,
    );
    if (!taken) return env;
  }
  throw new Error('freeClusterPorts: no free block of ports between 20000 and 31200');
}

function requireTool(tool: typeof TEMPORAL_SERVER, configured: string | undefined, config: Config, log: (l: string) => void): string {
  const found = findGoTool(tool, configured, path.join(config.dataDir, 'bin'), log);
  if (!found) throw new Error(howToInstall(tool));
  return found;
}

/** One of our processes, by its role's command (host/process-commands.ts), in a process group of its own. */
function serviceProcess(
  name: string,
  role: Role,
  url: string,
  env: NodeJS.ProcessEnv,
  output: (name: string, line: string) => void,
): ServiceProcess {
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> = Promise.resolve(null);
  const [command, ...args] = PROCESS_COMMANDS[role];
  const process_ = {
    name,
    role,
    url,
    pid: () => child?.pid,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    start: async () => {
      child = spawn(command === 'node' ? process.execPath : command, args, {
        cwd: appRoot(),
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const started = child;
      for (const stream of [started.stdout!, started.stderr!]) {
        let rest = '';
        stream.on('data', (chunk: Buffer) => {
          const lines = (rest + chunk.toString('utf8')).split('\n');
          rest = lines.pop()!;
          for (const line of lines) output(name, line);
        });
      }
      exited = new Promise((resolve) =>
        started.on('exit', (code, signal) => {
          output(name, `exited (${signal ?? `code ${code}`})`);
          resolve(code);
        }),
      );
    },
    stop: async (graceMs = 30_000) => {
      if (child?.pid && process_.running()) await stopProcess(child.pid, 'SIGTERM', graceMs);
      await exited;
    },
    kill: () => {
      if (child?.pid && process_.running()) process.kill(child.pid, 'SIGKILL');
    },
    exited: () => exited,
  };
  return process_;
}

/** Runs a one-shot job (migrate, Temporal set-up) to its end; its failure stops the start. */
async function runJob(role: Role, env: NodeJS.ProcessEnv, output: (name: string, line: string) => void): Promise<void> {
  const lines: string[] = [];
  const job = serviceProcess(role, role, '', env, (name, line) => {
    lines.push(line);
    output(name, line);
  });
  await job.start();
  if ((await job.exited()) !== 0) throw new Error(`the ${role} job failed:\n    ${lines.slice(-10).join('\n    ')}`);
}

export async function startCluster(config: Config, options: ClusterOptions = {}): Promise<Cluster> {
  const log = options.log ?? console.log;
  const output = options.output ?? ((name, line) => console.log(`[${name}] ${line}`));
  const apis = options.apis ?? 2;
  const workers = options.workers ?? 2;
  const dir = path.join(config.dataDir, 'cluster');
  mkdirSync(dir, { recursive: true });
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch((err) => log(`stopping failed: ${err}`));
  };
  try {
    await checkPorts(config, apis, workers);
    const serverBinary = requireTool(TEMPORAL_SERVER, config.cluster.serverPath, config, log);
    const sqlTool = requireTool(TEMPORAL_SQL_TOOL, config.cluster.sqlToolPath, config, log);

    // Two Postgres servers: Temporal's state and ours live and fail apart, as in a deployment.
    const temporalDbOptions = {
      dataDir: postgresDataDir(config, path.join('cluster', 'postgres-temporal')),
      port: config.cluster.temporalPostgresPort,
      portVariable: 'CLUSTER_TEMPORAL_PG_PORT',
      database: null,
    };
    const feesDbOptions = {
      dataDir: postgresDataDir(config, path.join('cluster', 'postgres-fees')),
      port: config.embeddedPostgresPort,
      portVariable: 'EMBEDDED_PG_PORT',
      database: 'fees',
    };
    const temporalDb = await startEmbeddedPostgres(config, temporalDbOptions);
    stops.push(() => temporalDb.stop());
    let feesDb: RunningPostgres = await startEmbeddedPostgres(config, feesDbOptions);
    stops.push(() => feesDb.stop());
    log(`Postgres (Temporal's) on 127.0.0.1:${temporalDbOptions.port}, ours on 127.0.0.1:${feesDbOptions.port}`);

    const db = { host: '127.0.0.1', port: temporalDbOptions.port, user: 'postgres', password: 'postgres' };
    await prepareTemporalDatabases(sqlTool, db, log);
    const serverOptions = {
      binary: serverBinary,
      db,
      port: config.cluster.temporalPort,
      membershipPort: config.cluster.membershipPort,
      metricsPort: config.cluster.metricsPort,
      historyShards: config.cluster.historyShards,
      logFile: path.join(dir, 'temporal-server.log'),
    };
    let server: RunningTemporalServer = await startTemporalServer(serverOptions);
    stops.push(() => server.stop());
    const temporalAddress = server.address;

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: feesDb.url,
      TEMPORAL_ADDRESS: temporalAddress,
      DATA_DIR: config.dataDir,
      // One job migrates; the processes only check the database is at this release's migration.
      MIGRATIONS: 'verify',
      ...options.env,
    };
    await runJob('temporal-setup', env, output);
    await runJob('migrate', env, output);

    const make = (role: 'api' | 'worker', i: number) => {
      const port = config.port + (role === 'api' ? i : apis + i);
      const portEnv = role === 'api' ? { PORT: String(port) } : { WORKER_PORT: String(port) };
      return serviceProcess(`${role}-${i + 1}`, role, `http://${config.host}:${port}`, { ...env, ...portEnv }, output);
    };
    const workerProcs = Array.from({ length: workers }, (_, i) => make('worker', i));
    const apiProcs = Array.from({ length: apis }, (_, i) => make('api', i));
    // The workers first: an API is ready once a worker polls. Stopped in the reverse order.
    for (const group of [workerProcs, apiProcs]) {
      for (const p of group) {
        await p.start();
        stops.push(() => p.stop());
      }
      await Promise.all(group.map((p) => untilReady(p)));
    }

    return {
      config,
      dir,
      temporalAddress,
      databaseUrl: feesDb.url,
      apis: apiProcs,
      workers: workerProcs,
      temporal: {
        pid: () => server.pid,
        stop: () => server.stop(),
        kill: () => process.kill(server.pid, 'SIGKILL'),
        start: async () => {
          await server.exited; // after kill(): its ports are free only once it is gone
          server = await startTemporalServer(serverOptions);
        },
      },
      postgres: {
        stop: () => feesDb.stop(),
        start: async () => {
          feesDb = await startEmbeddedPostgres(config, feesDbOptions);
        },
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Until the process's /readyz answers 200 (an API: Postgres, Temporal and a polling worker; a worker: its own checks). */
export async function untilReady(p: ServiceProcess, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!p.running()) throw new Error(`${p.name} exited while starting (its lines are above)`);
    const ok = await fetch(`${p.url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${p.name} was not ready at ${p.url}/readyz within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function banner(cluster: Cluster): string {
  const c = cluster.config.cluster;
  const lines = [
    `Temporal     server v1.29.1 at ${cluster.temporalAddress} (pid ${cluster.temporal.pid()}), ${c.historyShards} history shards, namespace ${cluster.config.temporal.namespace}; persistence and visibility on Postgres 127.0.0.1:${c.temporalPostgresPort}; log ${path.join(cluster.dir, 'temporal-server.log')}`,
    `Postgres     ours at ${cluster.databaseUrl.replace(/:[^:@/]+@/, ':***@')}`,
    ...cluster.workers.map((w) => `${w.name.padEnd(12)} pid ${w.pid()}, probes ${w.url}/healthz /readyz /metrics`),
    ...cluster.apis.map((a) => `${a.name.padEnd(12)} pid ${a.pid()}, ${a.url}  (explorer ${a.url}/docs)`),
    `State        ${cluster.dir}`,
  ];
  return `Fees API (cluster) is up:\n  ${lines.join('\n  ')}`;
}

async function main(): Promise<void> {
  loadDotEnv({ quiet: true });
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(2);
  }
  const cluster = await startCluster(config);
  console.log(banner(cluster));
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping the APIs, the workers, Temporal, then Postgres`);
    await cluster.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`Start-up failed: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  });
}
