/**
 * The test databases on the machine's Postgres. A run migrates one template once (global set-up);
 * each integration test file gets its own copy of it (`CREATE DATABASE … TEMPLATE`, a file copy in
 * Postgres, tens of milliseconds), so files run in parallel without seeing each other's rows, and a
 * check may count whatever its file wrote. Global teardown drops them all by the run's prefix.
 */
import pg from 'pg';

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

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A new database, empty or a copy of `template`; returns its URL. */
export async function createDatabase(name: string, template?: string): Promise<string> {
  await admin((c) => c.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`));
  return databaseUrl(name);
}

export async function dropDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/** Every database whose name starts with `prefix` (a run's template and its files' copies). */
export async function dropDatabases(prefix: string): Promise<void> {
  const { rows } = await admin((c) =>
    c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [prefix]),
  );
  for (const { datname } of rows) await dropDatabase(datname);
}
