/**
 * What one add costs Postgres, statement by statement: the backend's CPU per call of the
 * idempotency claim and completion (core/idempotency.ts), the ledger's write of one item
 * (append_line_items), and the one-row insert the bench's bounds write, in a new database migrated
 * as the service's, on one connection, in alternating rounds. The full benchmark measures every
 * Postgres process under load; this says which statement the milliseconds belong to.
 *
 *   npm run bench:sql                 # DATABASE_URL's server (default: the local test server)
 *
 * The backend's CPU is read from /proc, so the server must run on this machine.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { appendLineItems } from '../bills/line-item-store';
import { loadConfig } from '../core/config';
import { createPool, migrate, type Db } from '../core/db';
import { idempotencySettings } from '../core/deps';
import { fingerprint, idempotent } from '../core/idempotency';

const CALLS = Number(process.env.SQL_COSTS_CALLS ?? 2000);
const ROUNDS = 3;
const TICK_MS = 10; // USER_HZ: /proc counts CPU in hundredths of a second

const backendCpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
};

async function withDatabase<T>(adminUrl: string, fn: (url: string) => Promise<T>): Promise<T> {
  const name = `fees_sql_costs_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  try {
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return await fn(url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

type Case = (i: number) => Promise<unknown>;

function cases(db: Db, bills: string[]): Record<string, Case> {
  const item = (i: number) => ({ line_item_id: randomUUID(), amount: 100 + i, currency: 'USD', description: 'API calls', metadata: null });
  // The service's own settings, from the environment as it would read them.
  const settings = idempotencySettings(loadConfig());
  const operation = 'POST /bills/:billId/line-items';
  return {
    'one-row insert (the bound)': (i) =>
      db.query({
        name: 'cost_insert',
        text: 'INSERT INTO sql_cost_rows (id) VALUES ($1) ON CONFLICT (id) DO NOTHING',
        values: [`${i}-${randomUUID()}`],
      }),
    'idempotency claim + completion': (i) => {
      const body = { line_item: { ...item(i), bill_id: bills[i % bills.length], created_at: new Date().toISOString() }, totals: [] };
      const key = { key: randomUUID(), caller: 'anonymous' };
      return idempotent(db, settings, { key, operation, fingerprint: fingerprint(operation, body) }, async () => body);
    },
    'ledger write (append_line_items, one item)': (i) => appendLineItems(db, bills[i % bills.length], [item(i)], [], 'sql-costs'),
  };
}

async function main() {
  const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  await withDatabase(adminUrl, async (url) => {
    // One connection: every statement runs on the backend whose CPU is read.
    const db = createPool(url, 1);
    try {
      await migrate(db);
      await db.query('CREATE TABLE sql_cost_rows (id TEXT PRIMARY KEY, at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const bills = Array.from({ length: 100 }, (_, i) => `sql-costs-${i}`);
      await db.query(
        `INSERT INTO bills (bill_id, policy, billing_period_start, billing_period_end, created_at, request_fingerprint)
         SELECT id, 'usage_based', now(), now() + interval '1 month', now(), 'sql-costs' FROM unnest($1::text[]) AS id`,
        [bills],
      );
      const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const pid = rows[0].pid;
      const all = cases(db, bills);
      const perCall: Record<string, number[]> = {};
      let n = 0;
      for (let round = 0; round < ROUNDS; round++) {
        for (const [name, run] of Object.entries(all)) {
          for (let i = 0; i < 100; i++) await run(n++); // warm-up: plans prepared and cached
          const before = backendCpuMs(pid);
          for (let i = 0; i < CALLS; i++) await run(n++);
          (perCall[name] ??= []).push((backendCpuMs(pid) - before) / CALLS);
        }
      }
      const bound = perCall['one-row insert (the bound)'];
      console.log(`# Postgres backend CPU per call, one connection, ${ROUNDS} rounds of ${CALLS} calls`);
      console.log('| statement | ms per call, each round | against the one-row insert |');
      console.log('|---|---|---|');
      for (const [name, ms] of Object.entries(perCall)) {
        // A round whose insert used less than one tick of CPU has nothing to divide by.
        const ratio = bound.every((b) => b > 0) ? (ms.reduce((sum, m, r) => sum + m / bound[r], 0) / ms.length).toFixed(2) : '–';
        console.log(`| ${name} | ${ms.map((m) => m.toFixed(3)).join(', ')} | ${ratio} |`);
      }
    } finally {
      await db.end();
    }
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
