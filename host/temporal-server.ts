/**
 * The Temporal server (not the dev server) as `npm run cluster` runs it: its two databases on a
 * Postgres of its own, their schemas set up and upgraded by Temporal's SQL tool, then every service
 * in one process, configured by deploy/temporal/config/fees.yaml with values from the environment.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { temporalAnswers } from '../core/temporal';
import pg from 'pg';
import { appRoot } from '../core/app-root';
import { stopProcess } from './processes';

/** Where Temporal keeps its state: two databases, each with the schema of its own. */
const DATABASES = [
  { name: 'temporal', schema: 'postgresql/v12/temporal' },
  { name: 'temporal_visibility', schema: 'postgresql/v12/visibility' },
] as const;

export interface TemporalPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
}

/**
 * Creates Temporal's databases when missing, sets up their schema the first time and upgrades it
 * to the tool's newest version every time (a no-op when current), as Temporal's own schema job does.
 */
export async function prepareTemporalDatabases(sqlTool: string, db: TemporalPostgres, log: (line: string) => void): Promise<void> {
  const admin = new pg.Client({ host: db.host, port: db.port, user: db.user, password: db.password, database: 'postgres' });
  await admin.connect();
  try {
    for (const { name, schema } of DATABASES) {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      const base = ['--plugin', 'postgres12', '--ep', db.host, '-p', String(db.port), '-u', db.user, '--pw', db.password, '--db', name];
      if (exists.rowCount === 0) runSqlTool(sqlTool, [...base, 'create'], `create database ${name}`);
      const client = new pg.Client({ host: db.host, port: db.port, user: db.user, password: db.password, database: name });
      await client.connect();
      const versioned = await client.query(`SELECT to_regclass('schema_version') IS NOT NULL AS yes`).finally(() => client.end());
      if (!versioned.rows[0].yes) runSqlTool(sqlTool, [...base, 'setup-schema', '-v', '0.0'], `set up the schema of ${name}`);
      runSqlTool(sqlTool, [...base, 'update-schema', '--schema-name', schema], `update the schema of ${name}`);
      log(`${name}: schema ${schema} up to date`);
    }
  } finally {
    await admin.end();
  }
}

function runSqlTool(sqlTool: string, args: string[], what: string): void {
  const run = spawnSync(sqlTool, args, { encoding: 'utf8' });
  if (run.status !== 0) {
    const output = `${run.stdout ?? ''}${run.stderr ?? ''}`.trim().split('\n').slice(-10).join('\n    ');
    throw new Error(`Temporal's SQL tool could not ${what} (exit ${run.status}):\n    ${output}`);
  }
}

export interface TemporalServerOptions {
  binary: string;
  db: TemporalPostgres;
  /** The frontend's port (clients connect here); the history, matching and worker services take the next three. */
  port: number;
  membershipPort: number;
  metricsPort: number;
  historyShards: number;
  /** Its own output goes here (JSON lines, warnings and worse). */
  logFile: string;
}

export interface RunningTemporalServer {
  address: string;
  pid: number;
  exited: Promise<number | null>;
  stop: () => Promise<void>;
}

/** The environment deploy/temporal/config/fees.yaml reads. */
export function temporalServerEnv(o: Omit<TemporalServerOptions, 'binary' | 'logFile'>): NodeJS.ProcessEnv {
  return {
    TEMPORAL_DB_HOST: o.db.host,
    TEMPORAL_DB_PORT: String(o.db.port),
    TEMPORAL_DB_USER: o.db.user,
    TEMPORAL_DB_PASSWORD: o.db.password,
    TEMPORAL_HISTORY_SHARDS: String(o.historyShards),
    TEMPORAL_PORT: String(o.port),
    TEMPORAL_MEMBERSHIP_PORT: String(o.membershipPort),
    TEMPORAL_METRICS_PORT: String(o.metricsPort),
    TEMPORAL_DYNAMIC_CONFIG: path.join(appRoot(), 'deploy', 'temporal', 'dynamicconfig.yaml'),
  };
}

/** The server's command line: every service in one process, no authorizer (it listens on loopback). */
export function temporalServerArgs(): string[] {
  return ['--root', appRoot(), '--config', 'deploy/temporal/config', '--env', 'fees', '--allow-no-auth', 'start'];
}

/**
 * Starts the server in a process group of its own (so the terminal's Ctrl-C reaches only our
 * supervisor, which stops it in turn) and waits until its frontend answers.
 */
export async function startTemporalServer(o: TemporalServerOptions): Promise<RunningTemporalServer> {
  const out = openSync(o.logFile, 'a');
  const child = spawn(o.binary, temporalServerArgs(), {
    env: { ...process.env, ...temporalServerEnv(o) },
    stdio: ['ignore', out, out],
    detached: true,
  });
  closeSync(out);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const address = `127.0.0.1:${o.port}`;
  const deadline = Date.now() + 120_000;
  for (let answered = false; !answered;) {
    const code = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))]);
    if (code !== undefined) {
      const tail = readFileSync(o.logFile, 'utf8').trim().split('\n').slice(-15).join('\n    ');
      throw new Error(
        `the Temporal server exited (code ${code}) before it answered at ${address}; its last lines (${o.logFile}):\n    ${tail}`,
      );
    }
    answered = await temporalAnswers(address);
    if (!answered && Date.now() > deadline) {
      await stopProcess(child.pid!, 'SIGKILL');
      throw new Error(`the Temporal server did not answer at ${address} within 120 s (its log: ${o.logFile})`);
    }
  }
  return { address, pid: child.pid!, exited, stop: () => stopProcess(child.pid!, 'SIGTERM', 30_000) };
}
