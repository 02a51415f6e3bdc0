/**
 * Postgres access: one pool per process, and the migration runner for the standalone host.
 * (Under `encore run`, Encore applies the same migrations/ itself, into the same
 * golang-migrate `schema_migrations` table, so a database migrated by either host suits both.)
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { appRoot } from './app-root';

export type Db = pg.Pool;
export type Queryable = pg.Pool | pg.PoolClient;

export const MIGRATIONS_DIR = path.join(appRoot(), 'migrations');

// Any fixed 64-bit number works; it only has to be the same for every process of this service.
const MIGRATION_LOCK_ID = 727_001_4242;

export function createPool(connectionString: string, max: number): Db {
  const pool = new pg.Pool({ connectionString, max });
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

export async function inTransaction<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

interface Migration {
  version: number;
  name: string;
  file: string;
}

export async function listMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = await readdir(dir);
  return files
    .map((file) => /^(\d+)_(.+)\.up\.sql$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), name: m[2], file: path.join(dir, m[0]) }))
    .sort((a, b) => a.version - b.version);
}

/**
 * Applies pending migrations under an advisory lock, so several processes starting at once
 * migrate exactly once. Each migration and its version row commit together, so a failure leaves
 * the database at the previous version rather than "dirty".
 */
export async function migrate(db: Db, dir = MIGRATIONS_DIR): Promise<number[]> {
  const client = await db.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)');
    const { rows } = await client.query<{ version: string; dirty: boolean }>('SELECT version, dirty FROM schema_migrations LIMIT 1');
    if (rows[0]?.dirty) {
      throw new Error(`schema_migrations is dirty at version ${rows[0].version}: fix the database by hand first`);
    }
    const current = rows[0] ? Number(rows[0].version) : 0;
    for (const m of await listMigrations(dir)) {
      if (m.version <= current) continue;
      const sql = await readFile(m.file, 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('DELETE FROM schema_migrations');
        await client.query('INSERT INTO schema_migrations (version, dirty) VALUES ($1, false)', [m.version]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${path.basename(m.file)} failed: ${(err as Error).message}`);
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    client.release();
  }
}

/**
 * For processes that do not migrate (MIGRATIONS=verify): the database must be at this release's
 * newest migration, else start-up stops naming both versions and what to run.
 */
export async function verifyMigrated(db: Db, dir = MIGRATIONS_DIR): Promise<void> {
  const latest = (await listMigrations(dir)).at(-1)?.version ?? 0;
  const { rows } = await db
    .query<{ version: string; dirty: boolean }>('SELECT version, dirty FROM schema_migrations LIMIT 1')
    .catch((err: { code?: string }) => (err.code === '42P01' ? { rows: [] } : Promise.reject(err)));
  const current = rows[0] ? Number(rows[0].version) : 0;
  if (rows[0]?.dirty) throw new Error(`schema_migrations is dirty at version ${current}: fix the database by hand first`);
  if (current !== latest) {
    throw new Error(
      `the database is at migration ${current}, this release needs ${latest}: run the migration job first ` +
        `(npm run migrate, or MIGRATIONS=apply to let this process apply them)`,
    );
  }
}
