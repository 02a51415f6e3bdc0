/**
 * The benchmark: starts the service (embedded defaults, or DATABASE_URL / TEMPORAL_ADDRESS when
 * set; BENCH_URL uses one already running), drives it over loopback with autocannon, measures the
 * baselines that bound it in the same run, and prints a markdown table and
 * bench/results/latest.json. `--quick` runs every scenario briefly (the test suite's smoke check);
 * `--only a,b` runs some scenarios.
 *
 *   npm run bench [-- --quick] [-- --only add_line_item,create_bill] [-- --split]
 *
 * `--split` runs the API and the worker as two processes, each with its own RSS.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import { billWorkflowId, addLineItemUpdate, addStagedLineItemsUpdate, getBillQuery } from '../temporal/shared';
import { stageBatch } from '../lineitems/store';
import { batchTotals } from '../lineitems/validation';
import { reconcile } from '../bills/reconcile';
import { loadConfig } from '../core/config';
import { freePort, root, sleep, spawnHost, startSplitStack, stopSplitStack, tempDataDir } from './launch';

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, split: { type: 'boolean', default: false } },
});
const quick = args.quick!;
const only = args.only ? new Set(args.only.split(',')) : null;
const DURATION_S = quick ? 2 : 10;
const WARMUP_S = quick ? 0 : 2;
const POOL_SIZE = Number(process.env.DB_POOL_SIZE ?? 10);

export interface ScenarioResult {
  name: string;
  throughput: number;
  unit: string;
  p50_ms: number | null;
  p99_ms: number | null;
  errors: number;
  rss_mb: number | null;
  notes?: string;
}

const results: ScenarioResult[] = [];

/** Keeps a result and shows it at once: a full run takes many minutes. */
function record(r: ScenarioResult): void {
  results.push(r);
  console.log(`  ${r.name}: ${r.throughput} ${r.unit}, p50 ${r.p50_ms ?? '–'} ms, p99 ${r.p99_ms ?? '–'} ms, ${r.errors} errors${r.notes ? `; ${r.notes}` : ''}`);
}
const wanted = (name: string) => !only || only.has(name);

// ---------------------------------------------------------------------------------------------
// The service under test

interface Service {
  url: string;
  databaseUrl: string;
  temporalAddress: string;
  /** The process that serves the API (all-in-one unless --split). */
  pid: number | null;
  /** With --split, the worker's own process. */
  workerPid: number | null;
  stop: () => Promise<void>;
}

async function startService(): Promise<Service> {
  if (process.env.BENCH_URL) {
    return {
      url: process.env.BENCH_URL,
      databaseUrl: required('DATABASE_URL'),
      temporalAddress: required('TEMPORAL_ADDRESS'),
      pid: null,
      workerPid: null,
      stop: async () => undefined,
    };
  }
  if (args.split) {
    // API and worker as two processes, so each reports its own memory.
    const s = await startSplitStack('fees-bench-');
    return {
      url: s.url, databaseUrl: s.postgres.url, temporalAddress: s.temporal.address,
      pid: s.api.pid, workerPid: s.worker.pid, stop: () => stopSplitStack(s),
    };
  }
  const port = await freePort();
  const pgPort = await freePort();
  const temporalPort = await freePort();
  const dataDir = tempDataDir('fees-bench-');
  const env = {
    ...process.env,
    PORT: String(port), WORKER_PORT: '0', LOG_LEVEL: 'warn', DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(pgPort), TEMPORAL_DEV_PORT: String(temporalPort), TEMPORAL_DEV_UI_PORT: String(await freePort()),
    TEMPORAL_TASK_QUEUE: process.env.TEMPORAL_TASK_QUEUE ?? `bench-${randomUUID().slice(0, 8)}`,
  };
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the service (written on exit).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const host = await spawnHost('all', env, nodeArgs);
  return {
    url: `http://127.0.0.1:${port}`,
    databaseUrl: process.env.DATABASE_URL ?? `postgres://postgres:postgres@127.0.0.1:${pgPort}/fees`,
    temporalAddress: process.env.TEMPORAL_ADDRESS ?? `127.0.0.1:${temporalPort}`,
    pid: host.pid,
    workerPid: null,
    stop: async () => {
      await host.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`BENCH_URL needs ${name} for the baselines`);
  return v;
}

function rssMb(pid: number | null): number | null {
  if (pid === null) return null;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
}

// ---------------------------------------------------------------------------------------------
// Load drivers

interface Load {
  name: string;
  connections: number;
  /** Each call returns the next request. */
  next: () => { method: 'GET' | 'POST'; path: string; body?: unknown; headers?: Record<string, string> };
  itemsPerRequest?: number;
  durationS?: number;
}

async function httpLoad(svc: Service, load: Load): Promise<ScenarioResult> {
  const run = (duration: number) =>
    autocannon({
      url: svc.url,
      connections: load.connections,
      duration,
      requests: [{
        setupRequest: (req) => {
          const r = load.next();
          return {
            ...req, method: r.method, path: r.path,
            headers: { 'content-type': 'application/json', ...(r.headers ?? {}) },
            body: r.body === undefined ? undefined : JSON.stringify(r.body),
          };
        },
      }],
    });
  if (WARMUP_S > 0) await run(WARMUP_S);
  const r = await run(load.durationS ?? DURATION_S);
  const perItem = load.itemsPerRequest ?? 1;
  return {
    name: load.name,
    throughput: Math.round(r.requests.average * perItem),
    unit: perItem > 1 ? 'items/s' : 'req/s',
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
    rss_mb: rssMb(svc.pid),
  };
}

/** `fn` called by `concurrency` loops for the duration; latencies of every call. */
async function loop(name: string, unit: string, concurrency: number, perCall: number, fn: (i: number) => Promise<void>, pid: number | null): Promise<ScenarioResult> {
  // One counter across warm-up and measurement: every call gets fresh keys and positions.
  let n = 0;
  const runFor = async (seconds: number, record: boolean) => {
    const latencies: number[] = [];
    let errors = 0;
    const end = Date.now() + seconds * 1000;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const t = performance.now();
        try {
          await fn(n++);
          if (record) latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }));
    return { latencies, errors };
  };
  if (WARMUP_S > 0) await runFor(WARMUP_S, false);
  const { latencies, errors } = await runFor(DURATION_S, true);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] * 10) / 10 : null);
  return {
    name, unit, errors, rss_mb: rssMb(pid),
    throughput: Math.round((latencies.length * perCall) / DURATION_S),
    p50_ms: pct(0.5), p99_ms: pct(0.99),
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers against the API

async function api<T = any>(svc: Service, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(svc.url + p, {
    method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json as T;
}

const farFuture = () => new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString();

/**
 * Calls `fn` until it succeeds, up to six times, 200 ms apart: a set-up call answered 503 under
 * load is retried with its idempotency key, as a client would, rather than ending the run.
 * `onRetry` counts the retries a scenario reports.
 */
async function retrying<T>(fn: () => Promise<T>, onRetry: () => void = () => undefined): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 5) throw err;
      onRetry();
      await sleep(200);
    }
  }
}

async function createBills(svc: Service, n: number, concurrency = 32): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      next++;
      const key = randomUUID();
      const bill = await retrying(() => api(svc, 'POST', '/bills', { billing_period_end: farFuture() }, { 'idempotency-key': key }));
      ids.push(bill.bill_id);
    }
  }));
  return ids;
}

const pct = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 1000) / 10 : 0);

const item = (i: number) => ({ amount: 100 + (i % 900), currency: i % 3 === 0 ? 'EUR' : 'USD', description: `bench item ${i}` });
const batch = (from: number, n: number) => Array.from({ length: n }, (_, k) => item(from + k));

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  console.log(`# Fees API benchmark${quick ? ' (quick)' : ''}: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  const svc = await startService();
  const db = new pg.Pool({ connectionString: svc.databaseUrl, max: POOL_SIZE });
  const temporal = new Client({ connection: await Connection.connect({ address: svc.temporalAddress }) });
  try {
    const bills = await createBills(svc, quick ? 10 : 100);
    let seq = 0;

    // Baselines: what Postgres and Temporal alone do on this machine, in the same run.
    if (wanted('pg_insert_single') || wanted('pg_insert_batch')) {
      await db.query('CREATE TABLE IF NOT EXISTS bench_line_items (LIKE line_items INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)');
      await db.query('TRUNCATE bench_line_items');
    }
    const insert = `INSERT INTO bench_line_items (line_item_id, bill_id, position, amount, currency, description, source_ref)`;
    if (wanted('pg_insert_single')) {
      record(await loop('pg_insert_single', 'rows/s', 32, 1, async (i) => {
        await db.query({
          name: 'bench_single',
          text: `${insert} VALUES ($1, $2, $3, $4, $5, $6, 'bench') ON CONFLICT (line_item_id) DO NOTHING`,
          values: [randomUUID(), bills[i % bills.length], i, 100, 'USD', 'baseline'],
        });
      }, null));
    }
    if (wanted('pg_insert_batch')) {
      record(await loop('pg_insert_batch', 'rows/s', 32, 1000, async (i) => {
        const ids = Array.from({ length: 1000 }, () => randomUUID());
        await db.query(
          `${insert} SELECT id, $2, $3::bigint * 1000 + ord, 100, 'USD', 'baseline', 'bench'
           FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord) ON CONFLICT (line_item_id) DO NOTHING`,
          [ids, bills[i % bills.length], i],
        );
      }, null));
    }
    if (wanted('temporal_update_bare')) {
      record(await loop('temporal_update_bare', 'req/s', 32, 1, async (i) => {
        const id = randomUUID();
        await temporal.workflow.getHandle(billWorkflowId(bills[i % bills.length]))
          .executeUpdate(addLineItemUpdate, { args: [{ ...item(i), metadata: null, line_item_id: id }], updateId: id });
      }, svc.pid));
    }
    if (wanted('temporal_batch_bare')) {
      // A batch's path without the API: stage 1,000 items in Postgres, send the update that applies
      // them. What Temporal, the worker and Postgres alone do with batches here.
      record(await loop('temporal_batch_bare', 'items/s', 16, 1000, async (i) => {
        const billId = bills[i % bills.length];
        const items = batch(i * 1000, 1000).map((it) => ({ ...it, metadata: null, line_item_id: randomUUID() }));
        const batchId = randomUUID();
        if (await stageBatch(db, { batch_id: batchId, bill_id: billId, request_fingerprint: 'bench', items }) !== 'staged') throw new Error('not staged');
        await temporal.workflow.getHandle(billWorkflowId(billId))
          .executeUpdate(addStagedLineItemsUpdate, { args: [{ batch_id: batchId, item_count: items.length, totals: batchTotals(items) }], updateId: batchId });
      }, svc.pid));
    }

    // The API.
    if (wanted('add_line_item')) {
      record(await httpLoad(svc, {
        name: 'add_line_item', connections: 32,
        next: () => {
          const i = seq++;
          return { method: 'POST', path: `/bills/${bills[i % bills.length]}/line-items`, body: item(i), headers: { 'idempotency-key': randomUUID() } };
        },
      }));
    }
    if (wanted('add_line_item_hot_bill')) {
      const [hot] = await createBills(svc, 1);
      record(await httpLoad(svc, {
        name: 'add_line_item_hot_bill', connections: 32,
        next: () => ({ method: 'POST', path: `/bills/${hot}/line-items`, body: item(seq++), headers: { 'idempotency-key': randomUUID() } }),
      }));
    }
    if (wanted('add_line_items_batch')) {
      record(await httpLoad(svc, {
        name: 'add_line_items_batch', connections: 16, itemsPerRequest: 1000,
        next: () => {
          const i = seq++;
          return { method: 'POST', path: `/bills/${bills[i % bills.length]}/line-items/batch`, body: { items: batch(i * 1000, 1000) }, headers: { 'idempotency-key': randomUUID() } };
        },
      }));
    }
    if (wanted('create_bill')) {
      record(await httpLoad(svc, {
        name: 'create_bill', connections: 16,
        next: () => ({ method: 'POST', path: '/bills', body: { billing_period_end: farFuture() } }),
      }));
    }
    const openCount = async () => Number((await db.query(`SELECT count(*) FROM bills WHERE status = 'open'`)).rows[0].count);
    // Each page asks 100 workflows for their live totals; a query past the listing deadline falls
    // back to stored totals, so the notes say how many bills on the pages were not live.
    const fallbacks = async () => Number(/^fees_totals_fallbacks_total (\d+)/m.exec(await (await fetch(`${svc.url}/metrics`)).text())?.[1] ?? 0);
    const list = async (name: string, connections: number) => {
      const before = await fallbacks();
      let pages = 0;
      const r = await httpLoad(svc, {
        name, connections, durationS: quick ? 1 : 10,
        next: () => {
          pages++;
          return { method: 'GET', path: '/bills?status=open&limit=100' };
        },
      });
      return { r, note: `${connections} caller${connections > 1 ? 's' : ''}, ${await openCount()} open bills, ~${pct(await fallbacks() - before, pages * 100)}% of rows with stored totals (query deadline)` };
    };
    if (wanted('list_open_bills')) {
      const target = quick ? 100 : 1000;
      await createBills(svc, Math.max(0, target - (await openCount())));
      // The bound under the listing: the same page's 100 queries straight from a Temporal client,
      // in parallel, without HTTP, Postgres or a deadline.
      const page = (await db.query(`SELECT bill_id FROM bills WHERE status = 'open' ORDER BY created_at DESC, bill_id DESC LIMIT 100`)).rows.map((r) => r.bill_id as string);
      const bare = await loop('temporal_query_bare', 'pages/s', 1, 1, async () => {
        await Promise.all(page.map((id) => temporal.workflow.getHandle(billWorkflowId(id)).query(getBillQuery)));
      }, svc.pid);
      record({ ...bare, notes: `1 caller, ${page.length} queries per page in parallel, ${await openCount()} open bills` });
      // The latency target is one caller's; eight callers show how it degrades under load.
      const one = await list('list_open_bills', 1);
      record({ ...one.r, notes: one.note });
      const eight = await list('list_open_bills_8_callers', 8);
      record({ ...eight.r, notes: eight.note });
    }
    if (wanted('open_bills_10k')) {
      const target = quick ? 200 : 10_000;
      const t = Date.now();
      await createBills(svc, Math.max(0, target - (await openCount())));
      const { r, note } = await list('open_bills_10k', 1);
      const rss = svc.workerPid ? `RSS is the API process; the worker's is ${rssMb(svc.workerPid)} MB` : 'RSS is the all-in-one process (API + worker)';
      record({ ...r, notes: `${note} (created in ${Math.round((Date.now() - t) / 1000)} s); ${rss}` });
    }
    if (wanted('one_bill_1m_items')) {
      const total = quick ? 20_000 : 1_000_000;
      const [bill] = await createBills(svc, 1);
      const t = Date.now();
      let expected = 0;
      let sent = 0;
      let errors = 0;
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (sent < total) {
          const from = sent;
          sent += 1000;
          const items = batch(from, 1000);
          expected += items.reduce((a, it) => a + it.amount, 0);
          const key = `${bill}-${from}`;
          await retrying(() => api(svc, 'POST', `/bills/${bill}/line-items/batch`, { items }, { 'idempotency-key': key }), () => errors++);
        }
      }));
      const seconds = (Date.now() - t) / 1000;
      const live = await temporal.workflow.getHandle(billWorkflowId(bill)).query(getBillQuery);
      const liveSum = live.totals.reduce((a, x) => a + x.amount, 0);
      const stored = await db.query('SELECT coalesce(sum(amount), 0)::text AS s, count(*)::int AS n FROM line_items WHERE bill_id = $1', [bill]);
      const exact = liveSum === expected && Number(stored.rows[0].s) === expected && stored.rows[0].n === total;
      record({
        name: 'one_bill_1m_items', throughput: Math.round(total / seconds), unit: 'items/s', p50_ms: null, p99_ms: null, errors, rss_mb: rssMb(svc.pid),
        notes: `${total} items in ${seconds.toFixed(1)} s; totals ${exact ? 'exact' : `WRONG (live ${liveSum}, stored ${stored.rows[0].s}, expected ${expected}, rows ${stored.rows[0].n})`}; ${live.continued_as_new} continue-as-new runs`,
      });
      if (!exact) process.exitCode = 1;
    }
    if (wanted('reconcile')) {
      // Everything the run left behind: its cost, to show it can run often.
      const t = Date.now();
      const report = await reconcile({ db, temporal, config: loadConfig({}) });
      const seconds = (Date.now() - t) / 1000;
      record({
        name: 'reconcile', throughput: Math.round(report.bills_checked / seconds), unit: 'bills/s', p50_ms: null, p99_ms: null,
        errors: report.differences.length, rss_mb: null,
        notes: `${report.bills_checked} bills (${report.open_bills_checked_live} open, each queried live) and ${report.line_items_checked} line items ` +
          `in ${seconds.toFixed(1)} s (database ${(report.database_ms / 1000).toFixed(1)} s, live queries ${(report.live_ms / 1000).toFixed(1)} s); ` +
          `${report.differences.length} differences` +
          (report.differences.length ? ` (${report.differences.slice(0, 5).map((d) => `${d.bill_id}: ${d.kind}`).join(', ')})` : ''),
      });
      // Which bills, and how: a difference is a finding to chase, not a number.
      for (const d of report.differences.slice(0, 20)) console.log(`  reconcile difference: ${JSON.stringify(d)}`);
    }
  } finally {
    await temporal.connection.close();
    await db.end();
    await svc.stop();
  }
  report(started);
}

function report(started: number) {
  const byName = Object.fromEntries(results.map((r) => [r.name, r]));
  const ratio = (a: string, b: string) => (byName[a] && byName[b] ? Math.round((byName[a].throughput / byName[b].throughput) * 100) : null);
  const ratios = {
    add_line_item_vs_temporal_update_bare_pct: ratio('add_line_item', 'temporal_update_bare'),
    add_line_items_batch_vs_pg_insert_batch_pct: ratio('add_line_items_batch', 'pg_insert_batch'),
    add_line_items_batch_vs_temporal_batch_bare_pct: ratio('add_line_items_batch', 'temporal_batch_bare'),
    list_open_bills_p99_vs_temporal_query_bare_p99_pct: byName.list_open_bills?.p99_ms && byName.temporal_query_bare?.p99_ms
      ? Math.round((byName.list_open_bills.p99_ms / byName.temporal_query_bare.p99_ms) * 100) : null,
  };
  const lines = [
    '| scenario | throughput | p50 ms | p99 ms | errors | RSS MB | notes |',
    '|---|---|---|---|---|---|---|',
    ...results.map((r) => `| ${r.name} | ${r.throughput} ${r.unit} | ${r.p50_ms ?? '–'} | ${r.p99_ms ?? '–'} | ${r.errors} | ${r.rss_mb ?? '–'} | ${r.notes ?? ''} |`),
  ];
  console.log(`\n${lines.join('\n')}\n`);
  console.log(Object.entries(ratios).map(([k, v]) => `${k}: ${v ?? '–'}`).join('   '));
  const file = process.env.BENCH_RESULTS ?? path.join(root, 'bench', 'results', 'latest.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({
    quick, cores: os.cpus().length, node: process.version, at: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
    ratios, scenarios: byName,
  }, null, 2));
  console.log(`written ${path.relative(root, file)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
