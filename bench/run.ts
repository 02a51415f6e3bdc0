/**
 * The benchmark: starts the service (embedded defaults, or DATABASE_URL / TEMPORAL_ADDRESS when
 * set; BENCH_URL uses one already running), drives it over loopback with autocannon, measures the
 * baselines that bound it in the same run, and prints a markdown table and
 * bench/results/latest.json. `--quick` runs every scenario briefly (the test suite's smoke check);
 * `--only a,b` runs some scenarios.
 *
 *   npm run bench -- [--quick] [--only add_line_item,create_bill] [--split | --cluster]
 *
 * `--split` runs the API and the worker as two processes, each with its own RSS. `--cluster` runs
 * the same scenarios on `npm run cluster`'s topology (host/cluster.ts): the Temporal server on
 * Postgres, two API and two worker processes; the HTTP load goes to the first API, the bounds to
 * the same server.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { Client, Connection, WithStartWorkflowOperation } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { billWorkflowId, appendLineItemsUpdate, addStagedLineItemsUpdate, getBillQuery } from '../bills/messages';
import { noopUpdate, noopWorkflow, writeActivityUpdate, writeEagerUpdate, writeLocalUpdate } from './noop/workflows';
import { stageBatch } from '../bills/line-item-store';
import { batchTotals } from '../bills/line-item-rules';
import { reconcile } from '../bills/reconcile';
import { loadConfig } from '../core/config';
import { AesGcmCodec, dataConverter } from '../core/payload-codec';
import { freeClusterPorts, startCluster } from '../host/cluster';
import { freePort, root, sleep, spawnHost, spawnScript, startSplitStack, stopSplitStack, tempDataDir } from './launch';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    split: { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
  },
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
  /** A scenario of one timed operation (one_bill_1m_items, sql_sum_events, rate_10m_events): how long; and whether every total came out exact. */
  seconds?: number;
  exact?: boolean;
  /** CPU milliseconds per operation (request, or call of a bare scenario) by process, measured window only. */
  cpu_ms_per_op?: Record<string, number>;
}

const results: ScenarioResult[] = [];

/** Keeps a result and shows it at once: a full run takes many minutes. */
function record(r: ScenarioResult): void {
  results.push(r);
  console.log(
    `  ${r.name}: ${r.throughput} ${r.unit}, p50 ${r.p50_ms ?? '–'} ms, p99 ${r.p99_ms ?? '–'} ms, ${r.errors} errors${r.notes ? `; ${r.notes}` : ''}`,
  );
  if (r.cpu_ms_per_op)
    console.log(
      `    CPU ms per operation: ${Object.entries(r.cpu_ms_per_op)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
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
  /** With --split, the worker's own process (with --cluster, the first worker's). */
  workerPid: number | null;
  /** Every process of ours whose CPU counts as the service's (--cluster: both APIs and workers). */
  pids: number[];
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
      pids: [],
      stop: async () => undefined,
    };
  }
  if (args.cluster) {
    const dataDir = tempDataDir('fees-bench-cluster-');
    const config = loadConfig({
      ...process.env,
      ...(await freeClusterPorts()),
      DATA_DIR: dataDir,
      DATABASE_URL: undefined,
      TEMPORAL_ADDRESS: undefined,
    });
    // The processes' lines are kept (the last 200; all of them in BENCH_SERVICE_LOG) and printed if
    // the cluster does not start, so its error's "lines above" are there.
    const lines: string[] = [];
    const output = (name: string, line: string) => {
      lines.push(`[${name}] ${line}`);
      if (lines.length > 200) lines.shift();
      if (process.env.BENCH_SERVICE_LOG) appendFileSync(process.env.BENCH_SERVICE_LOG, `[${name}] ${line}\n`);
    };
    const cluster = await startCluster(config, { output, log: () => undefined, env: { LOG_LEVEL: 'warn' } }).catch((err: unknown) => {
      console.error(lines.join('\n'));
      throw err;
    });
    const pidOf = (p: { pid: () => number | undefined }) => p.pid()!;
    return {
      url: cluster.apis[0].url,
      databaseUrl: cluster.databaseUrl,
      temporalAddress: cluster.temporalAddress,
      pid: pidOf(cluster.apis[0]),
      workerPid: pidOf(cluster.workers[0]),
      pids: [...cluster.apis, ...cluster.workers].map(pidOf),
      stop: async () => {
        await cluster.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  if (args.split) {
    // API and worker as two processes, so each reports its own memory.
    const s = await startSplitStack('fees-bench-');
    return {
      url: s.url,
      databaseUrl: s.postgres.url,
      temporalAddress: s.temporal.address,
      pid: s.api.pid,
      workerPid: s.worker.pid,
      pids: [s.api.pid, s.worker.pid],
      stop: () => stopSplitStack(s),
    };
  }
  const port = await freePort();
  const pgPort = await freePort();
  const temporalPort = await freePort();
  const dataDir = tempDataDir('fees-bench-');
  const env = {
    ...process.env,
    PORT: String(port),
    WORKER_PORT: '0',
    LOG_LEVEL: 'warn',
    DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(pgPort),
    TEMPORAL_DEV_PORT: String(temporalPort),
    TEMPORAL_DEV_UI_PORT: String(await freePort()),
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
    pids: [host.pid],
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

// ---------------------------------------------------------------------------------------------
// Where the CPU goes: both cores are shared by every process, so a scenario's cost is the CPU it
// takes from all of them. Linux only (/proc); elsewhere nothing is reported.

const TICK_MS = 10; // USER_HZ is 100 on Linux

/**
 * CPU time so far, in ms, of this machine's processes that play a role, by pid. The Temporal
 * server's own Postgres (the cluster's `postgres-temporal`) counts as Temporal's, as the dev
 * server's SQLite does inside its process: *postgres* is ours (and the bounds' rows), so the two
 * topologies' Postgres columns measure the same thing.
 */
function cpuByRole(svc: Service): Map<string, { role: string; ms: number }> {
  const found = new Map<string, { role: string; ms: number }>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return found;
  }
  const procs = new Map<string, { ms: number; ppid: string; cmd: string; postgres: boolean }>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      procs.set(pid, {
        ms: (Number(fields[11]) + Number(fields[12])) * TICK_MS,
        ppid: fields[1],
        cmd,
        postgres: cmd.startsWith('postgres') || stat.includes('(postgres)'),
      });
    } catch {
      // exited meanwhile
    }
  }
  // A Postgres process's server: up its parents while they are Postgres too (a backend's parent is
  // the postmaster, whose command line names its data directory).
  const serverOf = (pid: string) => {
    let at = pid;
    while (procs.get(procs.get(at)!.ppid)?.postgres) at = procs.get(at)!.ppid;
    return procs.get(at)!.cmd;
  };
  for (const [pid, p] of procs) {
    const role = svc.pids.includes(Number(pid))
      ? 'service'
      : Number(pid) === process.pid
        ? 'bench'
        : p.cmd.includes('start-dev') || p.cmd.includes('deploy/temporal/config')
          ? 'temporal'
          : p.postgres
            ? serverOf(pid).includes('postgres-temporal')
              ? 'temporal'
              : 'postgres'
            : p.cmd.includes('bench/noop/worker.ts')
              ? 'floor'
              : null;
    if (role) found.set(pid, { role, ms: p.ms });
  }
  return found;
}

/** Per role, the CPU its processes used between two readings (a process gone by the second one is left out). */
function cpuPerOp(
  before: Map<string, { role: string; ms: number }>,
  after: Map<string, { role: string; ms: number }>,
  ops: number,
): Record<string, number> {
  const used: Record<string, number> = {};
  for (const [pid, { role, ms }] of after) used[role] = (used[role] ?? 0) + ms - (before.get(pid)?.ms ?? 0);
  return Object.fromEntries(Object.entries(used).map(([role, ms]) => [role, Math.round((ms / Math.max(ops, 1)) * 100) / 100]));
}

let currentService: Service;

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
      requests: [
        {
          setupRequest: (req) => {
            const r = load.next();
            return {
              ...req,
              method: r.method,
              path: r.path,
              headers: { 'content-type': 'application/json', ...(r.headers ?? {}) },
              body: r.body === undefined ? undefined : JSON.stringify(r.body),
            };
          },
        },
      ],
    });
  if (WARMUP_S > 0) await run(WARMUP_S);
  const cpuBefore = cpuByRole(svc);
  const r = await run(load.durationS ?? DURATION_S);
  const cpu = cpuPerOp(cpuBefore, cpuByRole(svc), r.requests.total);
  const perItem = load.itemsPerRequest ?? 1;
  return {
    cpu_ms_per_op: cpu,
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
async function loop(
  name: string,
  unit: string,
  concurrency: number,
  perCall: number,
  fn: (i: number) => Promise<void>,
  pid: number | null,
): Promise<ScenarioResult> {
  // One counter across warm-up and measurement: every call gets fresh keys and positions.
  let n = 0;
  const runFor = async (seconds: number, record: boolean) => {
    const latencies: number[] = [];
    let errors = 0;
    const end = Date.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < end) {
          const t = performance.now();
          try {
            await fn(n++);
            if (record) latencies.push(performance.now() - t);
          } catch {
            errors++;
          }
        }
      }),
    );
    return { latencies, errors };
  };
  if (WARMUP_S > 0) await runFor(WARMUP_S, false);
  const cpuBefore = cpuByRole(currentService);
  const { latencies, errors } = await runFor(DURATION_S, true);
  const cpu = cpuPerOp(cpuBefore, cpuByRole(currentService), latencies.length);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] * 10) / 10 : null;
  return {
    name,
    unit,
    errors,
    rss_mb: rssMb(pid),
    cpu_ms_per_op: cpu,
    throughput: Math.round((latencies.length * perCall) / DURATION_S),
    p50_ms: pct(0.5),
    p99_ms: pct(0.99),
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers against the API

async function api<T = any>(svc: Service, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(svc.url + p, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json as T;
}

const farFuture = () => new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString();

/**
 * Calls `fn` until it succeeds, for up to about a minute with a growing pause: a set-up call
 * answered 503 (or 409 while its first attempt is still in flight) under load is retried with its
 * idempotency key, as a client would, rather than ending the run. `onRetry` counts the retries a
 * scenario reports.
 */
async function retrying<T>(fn: () => Promise<T>, onRetry: () => void = () => undefined): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 20) throw err;
      onRetry();
      await sleep(Math.min(200 * 2 ** attempt, 5_000));
    }
  }
}

async function createBills(svc: Service, n: number, concurrency = 32, extra: Record<string, unknown> = {}): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const key = randomUUID();
        const bill = await retrying(() =>
          api(svc, 'POST', '/bills', { billing_period_end: farFuture(), ...extra }, { 'idempotency-key': key }),
        );
        ids.push(bill.bill_id);
      }
    }),
  );
  return ids;
}

/** A meter for the usage scenarios, and bills that price it (graduated, so rating has tiers to walk). */
const BENCH_METER = 'bench-calls';
const usagePrices = [
  {
    meter: BENCH_METER,
    currency: 'USD',
    model: 'graduated',
    tiers: [
      { up_to: 1_000_000, unit_amount_decimal: '0.01' },
      { up_to: 'inf', unit_amount_decimal: '0.005', flat_amount: 100 },
    ],
  },
];
async function createPricedBills(svc: Service, n: number): Promise<string[]> {
  await api(svc, 'POST', '/meters', { code: BENCH_METER, name: 'Bench calls', aggregation: 'count' });
  return createBills(svc, n, 32, { prices: usagePrices });
}

/**
 * `n` events of one bill written straight into Postgres (a million per statement, each statement's
 * aggregates kept by the same trigger POST /events fires): the size the rating and usage targets
 * need, in seconds rather than the minutes the API would take. Timestamps spread over the last hour.
 */
async function seedEvents(db: pg.Pool, billId: string, n: number): Promise<void> {
  for (let from = 0; from < n; from += 1_000_000) {
    await db.query(
      `INSERT INTO usage_events (meter, event_id, bill_id, ts, quantity)
       SELECT $1, $2 || '-' || g, $2, now() + (g % 3600) * interval '1 second', 1 FROM generate_series($3::bigint, $4::bigint) g`,
      [BENCH_METER, billId, from, Math.min(n, from + 1_000_000) - 1],
    );
  }
}

const item = (i: number) => ({ amount: 100 + (i % 900), currency: i % 3 === 0 ? 'EUR' : 'USD', description: `bench item ${i}` });
const batch = (from: number, n: number) => Array.from({ length: n }, (_, k) => item(from + k));

// ---------------------------------------------------------------------------------------------

/** The floor's own worker and workflows on the same dev server: bounds without any of our code. */
async function startFloor(svc: Service, temporal: Client, db: pg.Pool) {
  await db.query('CREATE TABLE IF NOT EXISTS bench_floor_rows (id TEXT PRIMARY KEY, at TIMESTAMPTZ NOT NULL DEFAULT now())');
  const taskQueue = `bench-floor-${randomUUID().slice(0, 8)}`;
  const worker = await spawnScript(
    'bench/noop/worker.ts',
    [],
    {
      ...process.env,
      TEMPORAL_ADDRESS: svc.temporalAddress,
      TASK_QUEUE: taskQueue,
      DATABASE_URL: svc.databaseUrl,
    },
    [],
    'ready',
  );
  const ids = Array.from({ length: 100 }, () => `floor-${randomUUID()}`);
  await Promise.all(ids.map((workflowId) => temporal.workflow.start(noopWorkflow, { workflowId, taskQueue })));
  const handles = ids.map((id) => temporal.workflow.getHandle(id));
  const httpUrl = `http://127.0.0.1:${/^http (\d+)$/m.exec(worker.output())![1]}`;
  return { taskQueue, handles, httpUrl, stop: () => worker.stop() };
}

async function main() {
  const started = Date.now();
  console.log(
    `# Fees API benchmark${quick ? ' (quick)' : ''}: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}` +
      (process.env.PAYLOAD_ENCRYPTION_KEYS ? ', payloads encrypted (PAYLOAD_ENCRYPTION_KEYS)' : ''),
  );
  const svc = await startService();
  currentService = svc;
  const db = new pg.Pool({ connectionString: svc.databaseUrl, max: POOL_SIZE });
  const temporal = new Client({ connection: await Connection.connect({ address: svc.temporalAddress }) });
  // Our workflows' payloads, as the service writes them (encrypted with PAYLOAD_ENCRYPTION_KEYS); the floor's stay plain.
  const ourConfig = loadConfig({ PAYLOAD_ENCRYPTION_KEYS: process.env.PAYLOAD_ENCRYPTION_KEYS });
  const ours = new Client({ connection: temporal.connection, dataConverter: dataConverter(ourConfig) });
  // What one add costs the codec: the payloads one add passes through it (4 encoded, 4 decoded, about
  // 150 bytes each, counted on an add to a bill with encryption on), with the configured key or a fresh one.
  const codec = new AesGcmCodec(ourConfig.payloadKeys ?? [{ id: 'bench', key: randomBytes(32) }]);
  const floor = await startFloor(svc, temporal, db);
  try {
    const bills = await createBills(svc, quick ? 10 : 100);
    let seq = 0;

    // Baselines: what Postgres and Temporal alone do on this machine, in the same run.
    const insert = `INSERT INTO bench_line_items (line_item_id, bill_id, position, amount, currency, description, source_ref)`;
    // The Temporal floor: update handlers that do nothing, the bound of any update-based add.
    const floorUpdate = (update: typeof noopUpdate) => async (i: number) => {
      await floor.handles[i % floor.handles.length].executeUpdate(update);
    };
    // How an update's one row is best written: local activity, regular activity, eager dispatch.
    const write = (update: typeof writeLocalUpdate) => async (i: number) => {
      await floor.handles[i % floor.handles.length].executeUpdate(update, { args: [randomUUID()] });
    };
    // Our workflow without the API: one item per update, straight to 100 bills.
    const append = async (i: number) => {
      const id = randomUUID();
      await ours.workflow
        .getHandle(billWorkflowId(bills[i % bills.length]))
        .executeUpdate(appendLineItemsUpdate, { args: [{ items: [{ ...item(i), metadata: null, line_item_id: id }] }], updateId: id });
    };
    const addTo = (billId: string) => ({
      method: 'POST' as const,
      path: `/bills/${billId}/line-items`,
      body: item(seq++),
      headers: { 'idempotency-key': randomUUID() },
    });

    // In this order: each of our scenarios right after the bounds it is set against, so both meet
    // the same machine (a minute later, a checkpoint or another tenant can move every number).
    const steps: [string, () => Promise<ScenarioResult>][] = [
      [
        'pg_insert_single',
        () =>
          loop(
            'pg_insert_single',
            'rows/s',
            32,
            1,
            async (i) => {
              await db.query({
                name: 'bench_single',
                text: `${insert} VALUES ($1, $2, $3, $4, $5, $6, 'bench') ON CONFLICT (line_item_id) DO NOTHING`,
                values: [randomUUID(), bills[i % bills.length], i, 100, 'USD', 'baseline'],
              });
            },
            null,
          ),
      ],
      [
        'pg_insert_batch',
        () =>
          loop(
            'pg_insert_batch',
            'rows/s',
            32,
            1000,
            async (i) => {
              const ids = Array.from({ length: 1000 }, () => randomUUID());
              await db.query(
                `${insert} SELECT id, $2, $3::bigint * 1000 + ord, 100, 'USD', 'baseline', 'bench'
           FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord) ON CONFLICT (line_item_id) DO NOTHING`,
                [ids, bills[i % bills.length], i],
              );
            },
            null,
          ),
      ],
      [
        'ingest_events',
        async () => {
          const priced = await createPricedBills(svc, quick ? 10 : 100);
          const now = new Date().toISOString();
          const r = await loop(
            'ingest_events',
            'rows/s',
            32,
            1000,
            async (i) => {
              const events = Array.from({ length: 1000 }, (_, k) => ({
                event_id: randomUUID(),
                meter: BENCH_METER,
                bill_id: priced[(i + k) % priced.length],
                timestamp: now,
              }));
              await api(svc, 'POST', '/events', { events });
            },
            svc.pid,
          );
          return { ...r, notes: `32 callers of 1,000-event calls over ${priced.length} priced bills` };
        },
      ],
      [
        'temporal_noop_update',
        async () => ({
          ...(await loop('temporal_noop_update', 'req/s', 32, 1, floorUpdate(noopUpdate), null)),
          notes: '100 workflows, 32 callers',
        }),
      ],
      [
        'temporal_write_local',
        async () => ({
          ...(await loop('temporal_write_local', 'req/s', 32, 1, write(writeLocalUpdate), null)),
          notes: 'one row by local activity',
        }),
      ],
      [
        'temporal_write_activity',
        async () => ({
          ...(await loop('temporal_write_activity', 'req/s', 32, 1, write(writeActivityUpdate), null)),
          notes: 'one row by regular activity',
        }),
      ],
      [
        'temporal_write_eager',
        async () => ({
          ...(await loop('temporal_write_eager', 'req/s', 32, 1, write(writeEagerUpdate), null)),
          notes: 'one row by regular activity, eager dispatch',
        }),
      ],
      [
        'http_floor',
        async () => ({
          ...(await httpLoad(
            { ...svc, url: floor.httpUrl },
            { name: 'http_floor', connections: 32, next: () => addTo(bills[seq % bills.length]) },
          )),
          notes: "an add's request and answer on a bare Fastify route (the floor's process), 32 callers",
        }),
      ],
      [
        'append_update_bare',
        async () => ({
          ...(await loop('append_update_bare', 'req/s', 32, 1, append, svc.pid)),
          notes: 'our update and local activity, no HTTP or API, 100 bills, 32 callers',
        }),
      ],
      [
        'add_line_item',
        async () => ({
          ...(await httpLoad(svc, { name: 'add_line_item', connections: 32, next: () => addTo(bills[seq % bills.length]) })),
          notes: '100 bills, 32 callers',
        }),
      ],
      [
        'payload_codec',
        async () => {
          const payload = (i: number) => defaultPayloadConverter.toPayload({ ...item(i), line_item_id: randomUUID(), bill_id: bills[0] });
          const oneAdd = async (i: number) => {
            for (let k = 0; k < 4; k++) await codec.decode(await codec.encode([payload(i)]));
          };
          return {
            ...(await loop('payload_codec', 'adds/s', 1, 1, oneAdd, null)),
            notes: "one add's payloads sealed and opened (AES-256-GCM), in the bench process",
          };
        },
      ],
      [
        'temporal_noop_update_1',
        async () => ({ ...(await loop('temporal_noop_update_1', 'req/s', 1, 1, floorUpdate(noopUpdate), null)), notes: '1 caller' }),
      ],
      [
        'temporal_write_local_1',
        async () => ({
          ...(await loop('temporal_write_local_1', 'req/s', 1, 1, write(writeLocalUpdate), null)),
          notes: 'one row by local activity, 1 caller',
        }),
      ],
      [
        'append_update_bare_1',
        async () => ({ ...(await loop('append_update_bare_1', 'req/s', 1, 1, append, svc.pid)), notes: 'the same, 1 caller' }),
      ],
      [
        'add_line_item_1_caller',
        async () => ({
          ...(await httpLoad(svc, { name: 'add_line_item_1_caller', connections: 1, next: () => addTo(bills[seq % bills.length]) })),
          notes: '1 caller, one add at a time',
        }),
      ],
      [
        'temporal_noop_update_hot',
        async () => {
          const [hot] = floor.handles;
          return {
            ...(await loop(
              'temporal_noop_update_hot',
              'req/s',
              32,
              1,
              async () => {
                await hot.executeUpdate(noopUpdate);
              },
              null,
            )),
            notes: 'one workflow, 32 callers',
          };
        },
      ],
      [
        'add_line_item_hot_bill',
        async () => {
          const [hot] = await createBills(svc, 1);
          return {
            ...(await httpLoad(svc, { name: 'add_line_item_hot_bill', connections: 32, next: () => addTo(hot) })),
            notes: 'one bill, 32 callers',
          };
        },
      ],
      [
        'temporal_noop_start',
        async () => ({
          ...(await loop(
            'temporal_noop_start',
            'req/s',
            16,
            1,
            async () => {
              const startWorkflowOperation = new WithStartWorkflowOperation(noopWorkflow, {
                workflowId: `floor-${randomUUID()}`,
                taskQueue: floor.taskQueue,
                workflowIdConflictPolicy: 'FAIL',
              });
              await temporal.workflow.executeUpdateWithStart(noopUpdate, { startWorkflowOperation });
            },
            null,
          )),
          notes: 'Update-with-Start of such a workflow, 16 callers',
        }),
      ],
      [
        'create_bill',
        async () => ({
          ...(await httpLoad(svc, {
            name: 'create_bill',
            connections: 16,
            next: () => ({ method: 'POST', path: '/bills', body: { billing_period_end: farFuture() } }),
          })),
          notes: '16 callers',
        }),
      ],
      // A batch's path without the API: stage 1,000 items in Postgres, send the update that applies
      // them. What Temporal, the worker and Postgres alone do with batches here.
      [
        'temporal_batch_bare',
        () =>
          loop(
            'temporal_batch_bare',
            'items/s',
            16,
            1000,
            async (i) => {
              const billId = bills[i % bills.length];
              const items = batch(i * 1000, 1000).map((it) => ({ ...it, metadata: null, line_item_id: randomUUID() }));
              const batchId = randomUUID();
              if ((await stageBatch(db, { batch_id: batchId, bill_id: billId, request_fingerprint: 'bench', items })) !== 'staged')
                throw new Error('not staged');
              await ours.workflow.getHandle(billWorkflowId(billId)).executeUpdate(addStagedLineItemsUpdate, {
                args: [{ batch_id: batchId, item_count: items.length, totals: batchTotals(items) }],
                updateId: batchId,
              });
            },
            svc.pid,
          ),
      ],
      [
        'add_line_items_batch',
        () =>
          httpLoad(svc, {
            name: 'add_line_items_batch',
            connections: 16,
            itemsPerRequest: 1000,
            next: () => {
              const i = seq++;
              return {
                method: 'POST',
                path: `/bills/${bills[i % bills.length]}/line-items/batch`,
                body: { items: batch(i * 1000, 1000) },
                headers: { 'idempotency-key': randomUUID() },
              };
            },
          }),
      ],
    ];
    for (const [name, run] of steps) {
      if (!wanted(name)) continue;
      if (name.startsWith('pg_insert')) {
        await db.query(
          'CREATE TABLE IF NOT EXISTS bench_line_items (LIKE line_items INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)',
        );
      }
      // With BENCH_SERVICE_LOG, each scenario's start, to line the service's own output (a GC trace) up with it.
      if (process.env.BENCH_SERVICE_LOG)
        appendFileSync(process.env.BENCH_SERVICE_LOG, `=== scenario ${name} ${new Date().toISOString()}\n`);
      record(await run());
      if (name === 'pg_insert_batch') {
        // Its million rows would keep Postgres busy (autovacuum, checkpoint) through the next scenarios.
        await db.query('DROP TABLE bench_line_items');
        await db.query('CHECKPOINT').catch(() => undefined); // needs a superuser; the embedded one is
      }
    }

    const openCount = async () => Number((await db.query(`SELECT count(*) FROM bills WHERE status = 'open'`)).rows[0].count);
    const list = async (name: string, connections: number, query = '') => {
      const r = await httpLoad(svc, {
        name,
        connections,
        durationS: quick ? 1 : 10,
        next: () => ({ method: 'GET', path: `/bills?status=open&limit=100${query}` }),
      });
      return {
        ...r,
        notes: `${connections} caller${connections > 1 ? 's' : ''}, ${await openCount()} open bills, limit=100${query ? `, ${query.slice(1)}` : ''}`,
      };
    };
    if (wanted('list_open_bills')) {
      await createBills(svc, Math.max(0, (quick ? 100 : 1000) - (await openCount())));
      record(await list('list_open_bills', 1));
      record(await list('list_open_bills_8_callers', 8));
      // The opt-in: a workflow query per open bill of the page, and its bound without our code.
      const page = (
        await db.query(`SELECT bill_id FROM bills WHERE status = 'open' ORDER BY created_at DESC, bill_id DESC LIMIT 100`)
      ).rows.map((r) => r.bill_id as string);
      const bare = await loop(
        'temporal_query_bare',
        'pages/s',
        1,
        1,
        async () => {
          await Promise.all(page.map((id) => ours.workflow.getHandle(billWorkflowId(id)).query(getBillQuery)));
        },
        svc.pid,
      );
      record({ ...bare, notes: `1 caller, ${page.length} queries per page in parallel` });
      record(await list('list_open_bills_live', 1, '&totals=live'));
    }
    if (wanted('open_bills_10k')) {
      const t = Date.now();
      await createBills(svc, Math.max(0, (quick ? 200 : 10_000) - (await openCount())));
      const r = await list('open_bills_10k', 1);
      const rss = svc.workerPid
        ? `RSS is the API process; the worker's is ${rssMb(svc.workerPid)} MB`
        : 'RSS is the all-in-one process (API + worker)';
      record({ ...r, notes: `${r.notes} (created in ${Math.round((Date.now() - t) / 1000)} s); ${rss}` });
    }
    if (wanted('one_bill_1m_items')) {
      const total = quick ? 20_000 : 1_000_000;
      const [bill] = await createBills(svc, 1);
      const t = Date.now();
      let expected = 0;
      let sent = 0;
      let errors = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (sent < total) {
            const from = sent;
            sent += 1000;
            const items = batch(from, 1000);
            expected += items.reduce((a, it) => a + it.amount, 0);
            const key = `${bill}-${from}`;
            await retrying(
              () => api(svc, 'POST', `/bills/${bill}/line-items/batch`, { items }, { 'idempotency-key': key }),
              () => errors++,
            );
          }
        }),
      );
      const seconds = (Date.now() - t) / 1000;
      const live = await ours.workflow.getHandle(billWorkflowId(bill)).query(getBillQuery);
      const liveSum = live.totals.reduce((a, x) => a + x.amount, 0);
      const stored = await db.query('SELECT coalesce(sum(amount), 0)::text AS s, count(*)::int AS n FROM line_items WHERE bill_id = $1', [
        bill,
      ]);
      const exact =
        liveSum === expected && live.line_item_count === total && Number(stored.rows[0].s) === expected && stored.rows[0].n === total;
      record({
        name: 'one_bill_1m_items',
        throughput: Math.round(total / seconds),
        unit: 'items/s',
        p50_ms: null,
        p99_ms: null,
        errors,
        rss_mb: rssMb(svc.pid),
        seconds: Math.round(seconds * 10) / 10,
        exact,
        notes: `${total} items in ${seconds.toFixed(1)} s, 4 callers of 1,000-item batches; totals ${exact ? 'exact' : `WRONG (live ${liveSum}, stored ${stored.rows[0].s}, expected ${expected}, rows ${stored.rows[0].n})`}; ${live.continued_as_new} continue-as-new runs`,
      });
      if (!exact) process.exitCode = 1;
    }
    if (wanted('rate_10m_events')) {
      // Rating at the close against the bare sum over the same rows, timed alone, in the same run.
      const total = quick ? 100_000 : 10_000_000;
      const [bill] = await createPricedBills(svc, 1);
      const t = Date.now();
      await seedEvents(db, bill, total);
      const seeded = (Date.now() - t) / 1000;
      await db.query('ANALYZE usage_events');
      const sums: number[] = [];
      for (let k = 0; k < 3; k++) {
        const s0 = performance.now();
        await db.query(`SELECT sum(quantity) FROM usage_events WHERE bill_id = $1 AND meter = $2 AND ts >= $3 AND ts < $4`, [
          bill,
          BENCH_METER,
          '2000-01-01T00:00:00Z',
          farFuture(),
        ]);
        sums.push(performance.now() - s0);
      }
      sums.sort((a, b) => a - b);
      const sumMs = Math.round(sums[1] * 10) / 10;
      record({
        name: 'sql_sum_events',
        throughput: Math.round(total / (sumMs / 1000)),
        unit: 'events/s',
        p50_ms: null,
        p99_ms: null,
        errors: 0,
        rss_mb: null,
        seconds: sumMs / 1000,
        notes: `bare SELECT sum(quantity) over ${total} events of one bill: ${sumMs} ms (median of 3)`,
      });
      const c0 = performance.now();
      const closed = await api(svc, 'POST', `/bills/${bill}/close`);
      const closeMs = Math.round((performance.now() - c0) * 10) / 10;
      const expected = Math.round(
        Math.min(total, 1_000_000) * 0.01 + Math.max(0, total - 1_000_000) * 0.005 + (total > 1_000_000 ? 100 : 0),
      );
      const rated = closed.bill.totals.find((x: { currency: string }) => x.currency === 'USD')?.amount;
      record({
        name: 'rate_10m_events',
        throughput: Math.round(total / (closeMs / 1000)),
        unit: 'events/s',
        p50_ms: null,
        p99_ms: null,
        errors: rated === expected ? 0 : 1,
        rss_mb: null,
        seconds: closeMs / 1000,
        notes: `POST /bills/:billId/close of a bill with ${total} events (seeded in ${seeded.toFixed(1)} s): ${closeMs} ms, rated ${rated} (expected ${expected})`,
      });
    }
    if (wanted('usage_1m_events')) {
      const total = quick ? 20_000 : 1_000_000;
      const [bill] = await createPricedBills(svc, 1);
      await seedEvents(db, bill, total);
      const r = await httpLoad(svc, {
        name: 'usage_1m_events',
        connections: 1,
        next: () => ({ method: 'GET', path: `/bills/${bill}/usage` }),
      });
      record({ ...r, notes: `GET /bills/:billId/usage, 1 caller, ${total} events in the open period` });
    }
    if (wanted('reconcile')) {
      // Everything the run left behind: its cost, to show it can run often.
      const t = Date.now();
      const report = await reconcile({ db, temporal: ours, config: ourConfig });
      const seconds = (Date.now() - t) / 1000;
      record({
        name: 'reconcile',
        throughput: Math.round(report.bills_checked / seconds),
        unit: 'bills/s',
        p50_ms: null,
        p99_ms: null,
        errors: report.differences.length,
        rss_mb: null,
        notes:
          `${report.bills_checked} bills (${report.open_bills_checked_live} open, each queried live) and ${report.line_items_checked} line items ` +
          `in ${seconds.toFixed(1)} s (database ${(report.database_ms / 1000).toFixed(1)} s, live queries ${(report.live_ms / 1000).toFixed(1)} s); ` +
          `${report.differences.length} differences` +
          (report.differences.length
            ? ` (${report.differences
                .slice(0, 5)
                .map((d) => `${d.bill_id}: ${d.kind}`)
                .join(', ')})`
            : ''),
      });
      // Which bills, and how: a difference is a finding to chase, not a number.
      for (const d of report.differences.slice(0, 20)) console.log(`  reconcile difference: ${JSON.stringify(d)}`);
    }
  } finally {
    await floor.stop();
    await temporal.connection.close();
    await db.end();
    await svc.stop();
  }
  report(started);
}

interface Target {
  target: string;
  /** The measured ratio or value. */
  value: number | null;
  met: boolean | null;
}

/** The issue's targets, each a ratio (or value) of this run's own numbers. */
function targets(byName: Record<string, ScenarioResult>): { ratios: Record<string, number | null>; targets: Target[] } {
  const s = (name: string) => byName[name];
  const div = (a: number | null | undefined, b: number | null | undefined) => (a != null && b ? Math.round((a / b) * 100) / 100 : null);
  const cpu = (name: string, role: string) => s(name)?.cpu_ms_per_op?.[role];
  const workerClient = () => (cpu('temporal_write_local', 'floor') ?? NaN) + (cpu('temporal_write_local', 'bench') ?? NaN);
  const ratios = {
    add_line_item_vs_noop_update: div(s('add_line_item')?.throughput, s('temporal_noop_update')?.throughput),
    add_line_item_p99_vs_noop_update_p99: div(s('add_line_item')?.p99_ms, s('temporal_noop_update')?.p99_ms),
    add_line_item_1_caller_p50_vs_noop_update_1_p50: div(s('add_line_item_1_caller')?.p50_ms, s('temporal_noop_update_1')?.p50_ms),
    hot_bill_vs_noop_update_hot: div(s('add_line_item_hot_bill')?.throughput, s('temporal_noop_update_hot')?.throughput),
    hot_bill_vs_add_line_item: div(s('add_line_item_hot_bill')?.throughput, s('add_line_item')?.throughput),
    create_bill_vs_noop_start: div(s('create_bill')?.throughput, s('temporal_noop_start')?.throughput),
    add_line_item_vs_append_update_bare: div(s('add_line_item')?.throughput, s('append_update_bare')?.throughput),
    add_line_items_batch_vs_temporal_batch_bare: div(s('add_line_items_batch')?.throughput, s('temporal_batch_bare')?.throughput),
    // The codec's CPU per add (bench process) over the service's CPU per add, same run.
    payload_codec_vs_add_line_item_service_cpu: div(
      (s('payload_codec')?.cpu_ms_per_op?.bench ?? 0) * 10,
      (s('add_line_item')?.cpu_ms_per_op?.service ?? 0) * 10,
    ),
    add_line_item_vs_write_local: div(s('add_line_item')?.throughput, s('temporal_write_local')?.throughput),
    add_line_item_1_caller_p50_vs_write_local_1_p50: div(s('add_line_item_1_caller')?.p50_ms, s('temporal_write_local_1')?.p50_ms),
    // CPU per operation: our service per add against the bound's worker and client per one-row
    // write; with HTTP's own cost (http_floor's server) added to the bound; our worker side
    // (append_update_bare, no HTTP) against the bound's worker; Postgres per add against per write.
    add_line_item_service_cpu_vs_write_local_worker_client: div(cpu('add_line_item', 'service'), workerClient()),
    add_line_item_service_cpu_vs_write_local_worker_client_http: div(
      cpu('add_line_item', 'service'),
      workerClient() + (cpu('http_floor', 'floor') ?? NaN),
    ),
    append_update_bare_service_cpu_vs_write_local_worker: div(cpu('append_update_bare', 'service'), cpu('temporal_write_local', 'floor')),
    add_line_item_postgres_cpu_vs_write_local: div(cpu('add_line_item', 'postgres'), cpu('temporal_write_local', 'postgres')),
    write_local_vs_noop_update: div(s('temporal_write_local')?.throughput, s('temporal_noop_update')?.throughput),
    write_activity_vs_noop_update: div(s('temporal_write_activity')?.throughput, s('temporal_noop_update')?.throughput),
    write_eager_vs_noop_update: div(s('temporal_write_eager')?.throughput, s('temporal_noop_update')?.throughput),
    ingest_events_vs_pg_insert_batch: div(s('ingest_events')?.throughput, s('pg_insert_batch')?.throughput),
    rate_10m_events_close_vs_sql_sum: div(s('rate_10m_events')?.seconds, s('sql_sum_events')?.seconds),
  };
  const check = (target: string, value: number | null | undefined, ok: (v: number) => boolean): Target => ({
    target,
    value: value ?? null,
    met: value == null ? null : ok(value),
  });
  const hot = s('add_line_item_hot_bill');
  const million = s('one_bill_1m_items');
  return {
    ratios,
    targets: [
      check('add_line_item ≥ 0.7 × temporal_noop_update throughput', ratios.add_line_item_vs_noop_update, (v) => v >= 0.7),
      check('add_line_item ≥ 0.8 × temporal_write_local throughput', ratios.add_line_item_vs_write_local, (v) => v >= 0.8),
      check('add_line_item p99 ≤ 1.5 × temporal_noop_update p99', ratios.add_line_item_p99_vs_noop_update_p99, (v) => v <= 1.5),
      check(
        'add_line_item_1_caller p50 ≤ 1.5 × temporal_write_local_1 p50',
        ratios.add_line_item_1_caller_p50_vs_write_local_1_p50,
        (v) => v <= 1.5,
      ),
      check(
        "add_line_item service CPU ≤ 1.3 × temporal_write_local's worker + client CPU",
        ratios.add_line_item_service_cpu_vs_write_local_worker_client,
        (v) => v <= 1.3,
      ),
      check("add_line_item Postgres CPU ≤ 3 × temporal_write_local's", ratios.add_line_item_postgres_cpu_vs_write_local, (v) => v <= 3),
      check(
        'add_line_item_1_caller p50 ≤ 2 × temporal_noop_update_1 p50',
        ratios.add_line_item_1_caller_p50_vs_noop_update_1_p50,
        (v) => v <= 2,
      ),
      check('add_line_item_hot_bill ≥ 3 × temporal_noop_update_hot throughput', ratios.hot_bill_vs_noop_update_hot, (v) => v >= 3),
      check('add_line_item_hot_bill ≥ add_line_item throughput', ratios.hot_bill_vs_add_line_item, (v) => v >= 1),
      check('add_line_item_hot_bill errors = 0', hot?.errors, (v) => v === 0),
      check('create_bill ≥ 0.7 × temporal_noop_start throughput', ratios.create_bill_vs_noop_start, (v) => v >= 0.7),
      check('list_open_bills p99 ≤ 50 ms (1,000 open bills)', s('list_open_bills')?.p99_ms, (v) => v <= 50),
      check('open_bills_10k p99 ≤ 50 ms (10,000 open bills)', s('open_bills_10k')?.p99_ms, (v) => v <= 50),
      check(
        "payload encryption's CPU per add ≤ 0.05 × add_line_item's service CPU",
        ratios.payload_codec_vs_add_line_item_service_cpu,
        (v) => v <= 0.05,
      ),
      check('one_bill_1m_items exact and ≤ 60 s', million ? (million.exact ? million.seconds! : Infinity) : null, (v) => v <= 60),
      check('ingest_events ≥ 0.5 × pg_insert_batch rows/s', ratios.ingest_events_vs_pg_insert_batch, (v) => v >= 0.5),
      check(
        'rate_10m_events: the close, rated exactly, ≤ 3 × a bare SELECT sum(quantity) over the same rows',
        s('rate_10m_events') ? (s('rate_10m_events')!.errors ? Infinity : ratios.rate_10m_events_close_vs_sql_sum) : null,
        (v) => v <= 3,
      ),
      check('usage_1m_events p99 ≤ 50 ms (1,000,000 events in the open period)', s('usage_1m_events')?.p99_ms, (v) => v <= 50),
    ],
  };
}

function report(started: number) {
  const byName = Object.fromEntries(results.map((r) => [r.name, r]));
  const { ratios, targets: checked } = targets(byName);
  const lines = [
    '| scenario | throughput | p50 ms | p99 ms | errors | RSS MB | notes |',
    '|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.throughput} ${r.unit} | ${r.p50_ms ?? '–'} | ${r.p99_ms ?? '–'} | ${r.errors} | ${r.rss_mb ?? '–'} | ${r.notes ?? ''} |`,
    ),
    '',
    '| target | this run | met |',
    '|---|---|---|',
    ...checked.map((t) => `| ${t.target} | ${t.value ?? '–'} | ${t.met === null ? '–' : t.met ? 'yes' : 'NO'} |`),
  ];
  console.log(`\n${lines.join('\n')}\n`);
  const file = process.env.BENCH_RESULTS ?? path.join(root, 'bench', 'results', args.cluster ? 'latest-cluster.json' : 'latest.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        quick,
        topology: args.cluster ? 'cluster' : args.split ? 'split' : 'all-in-one',
        cores: os.cpus().length,
        node: process.version,
        at: new Date().toISOString(),
        seconds: Math.round((Date.now() - started) / 1000),
        ratios,
        targets: checked,
        scenarios: byName,
      },
      null,
      2,
    ),
  );
  console.log(`written ${path.relative(root, file)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
