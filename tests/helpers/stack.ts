/**
 * A real service for a test file: the Fastify host on a free port, a real worker on its own task
 * queue, the shared Postgres database and Temporal dev server from global-setup.
 */
import { suiteEncryptionEnv } from './encryption';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { openSync } from 'node:fs';
import { Runtime, type Worker } from '@temporalio/worker';
import { loadConfig, type Config } from '../../core/config';
import { createPool, migrate, type Db } from '../../core/db';
import type { Deps } from '../../core/deps';
import { buildServer } from '../../host/server';
import { connectClient } from '../../core/temporal';
import { createLogger, type DestinationStream, type Logger } from '../../core/log';
import { createMailer } from '../../invoices/mailer';
import { createActivities, type Activities } from '../../temporal/activities';
import { createWorker } from '../../temporal/worker';
import { billWorkflowId, getBillQuery, type LiveBill } from '../../bills/messages';
import { holdToContract } from './contract';
import { runLogPath, runLogStream, sdkRunLogger } from './run-logs';
import { testTempDir } from './tmp';
import { startWebhookRelay, type Relay } from '../../webhooks/relay';

export interface Stack {
  url: string;
  db: Db;
  deps: Deps;
  config: Config;
  /** The activities as the worker runs them, to call one directly. */
  activities: () => Activities;
  startWorker: () => Promise<void>;
  stopWorker: () => Promise<void>;
  /** The stack's webhook relay (it runs whether or not the worker does). */
  relay: Relay;
  stop: () => Promise<void>;
}

export const TEST_WEBHOOK_SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');

/**
 * For a stack whose tests kill a worker: a workflow whose worker died waits about a second, not
 * ten, before another worker takes its next task (sticky queue), or the task it held (task timeout).
 */
export const KILLED_WORKER_ENV = {
  WORKER_STICKY_QUEUE_TIMEOUT_MS: '1000',
  TEMPORAL_WORKFLOW_TASK_TIMEOUT_MS: '3000',
  BILL_LOCAL_ACTIVITY_TIMEOUT_MS: '2000',
};

function quietSdk(): void {
  try {
    Runtime.install({ logger: sdkRunLogger() });
  } catch {
    // already installed by an earlier stack in this process
  }
}

export async function startStack(
  env: Record<string, string> = {},
  wrapActivities?: (a: Activities) => Activities,
  opts: { log?: Logger; logStream?: DestinationStream } = {},
): Promise<Stack> {
  quietSdk();
  const config = loadConfig({
    DATABASE_URL: process.env.FEES_TEST_DATABASE_URL,
    TEMPORAL_ADDRESS: process.env.FEES_TEST_TEMPORAL_ADDRESS,
    TEMPORAL_TASK_QUEUE: `test-${randomUUID()}`,
    LOG_LEVEL: 'warn',
    // The invoice outbox (no SMTP_URL) and anything else written to disk stay out of the repository.
    DATA_DIR: testTempDir('stack-'),
    DB_POOL_SIZE: '20',
    // One key for every process of a test (its crashing workers too), so sealed secrets open anywhere.
    WEBHOOK_SECRETS_KEY: TEST_WEBHOOK_SECRETS_KEY,
    ...suiteEncryptionEnv(),
    ...env,
  });
  const db = createPool(config.databaseUrl!, config.dbPoolSize);
  await migrate(db);
  const temporal = await connectClient(config, config.temporal.address!);
  const deps: Deps = { db, temporal, config };

  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const startWorker = async () => {
    worker = await createWorker({
      config,
      address: config.temporal.address!,
      db,
      workflowBundlePath: process.env.FEES_TEST_BUNDLE,
      wrapActivities,
      log: opts.log ?? createLogger('warn', { component: 'worker' }, runLogStream('service')),
    });
    running = worker.run();
  };
  const stopWorker = async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    worker = undefined;
  };
  await startWorker();
  const relay = startWebhookRelay({
    db,
    temporal,
    config,
    log: opts.log ?? createLogger('warn', { component: 'webhook-relay' }, runLogStream('service')),
  });

  const app = buildServer(deps, { logLevel: opts.logStream ? 'info' : 'warn', logStream: opts.logStream ?? runLogStream('service') });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  holdToContract(`http://127.0.0.1:${port}`);

  return {
    url: `http://127.0.0.1:${port}`,
    db,
    deps,
    config,
    activities: () => createActivities({ db, config, mailer: createMailer(config), log: createLogger('silent') }),
    startWorker,
    stopWorker,
    relay,
    stop: async () => {
      await app.close();
      await relay.stop();
      await stopWorker();
      await temporal.connection.close();
      await db.end();
    },
  };
}

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
  /** The body exactly as it came over the wire. */
  raw: string;
}

/** A replay is the first answer byte for byte: status, content headers and the body's text. */
export function expectReplayOf(replay: Reply, first: Reply): void {
  const wire = (r: Reply) => ({
    status: r.status,
    type: r.headers.get('content-type'),
    length: r.headers.get('content-length'),
    raw: r.raw,
  });
  expect(wire(replay)).toEqual(wire(first));
}

/** Collects JSON log lines written to it. */
export function logSink(): { stream: Writable; lines: Record<string, any>[] } {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { stream, lines };
}

/** A JSON call against the stack; `body` may be a raw string to send malformed JSON. */
export async function call<T = any>(
  stack: Stack,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const res = await fetch(stack.url + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const reply = {
    status: res.status,
    body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text || undefined,
  };
  // Not enumerable: replies compare equal by status and body (a replay has its own request id).
  Object.defineProperty(reply, 'raw', { value: text, enumerable: false });
  return Object.defineProperty(reply, 'headers', { value: res.headers, enumerable: false }) as Reply<T>;
}

export const uid = (prefix = 'b') => `${prefix}-${randomUUID().slice(0, 13)}`;

export const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every table a request could write. */
export const WRITABLE_TABLES = [
  'bills',
  'line_items',
  'bill_totals',
  'idempotency_keys',
  'line_item_batches',
  'bill_postprocess',
  'invoices',
  'invoice_sequences',
  'webhook_endpoints',
  'webhook_events',
  'webhook_deliveries',
  'invoice_accounts',
  'invoice_balances',
  'invoice_payments',
  'credit_notes',
  'credit_note_lines',
];

/** What a check is about: bills, the idempotency keys sent, webhook receivers by URL. */
export interface RowScope {
  bills?: string[];
  keys?: string[];
  webhookUrls?: string[];
}

/** Per table, the rows of `scope` ($1 the bills, $2 the keys, $3 the receivers' URLs; each query names only those it uses). */
const SCOPED: Record<string, string> = {
  bills: 'SELECT * FROM bills WHERE bill_id = ANY($1::text[])',
  line_items: 'SELECT * FROM line_items WHERE bill_id = ANY($1::text[])',
  bill_totals: 'SELECT * FROM bill_totals WHERE bill_id = ANY($1::text[])',
  line_item_batches: 'SELECT * FROM line_item_batches WHERE bill_id = ANY($1::text[])',
  bill_postprocess: 'SELECT * FROM bill_postprocess WHERE bill_id = ANY($1::text[])',
  invoices: 'SELECT * FROM invoices WHERE bill_id = ANY($1::text[])',
  invoice_accounts: 'SELECT * FROM invoice_accounts WHERE bill_id = ANY($1::text[])',
  invoice_balances: 'SELECT * FROM invoice_balances WHERE bill_id = ANY($1::text[])',
  invoice_payments: 'SELECT * FROM invoice_payments WHERE bill_id = ANY($1::text[])',
  credit_notes: 'SELECT * FROM credit_notes WHERE bill_id = ANY($1::text[])',
  credit_note_lines: 'SELECT l.* FROM credit_note_lines l JOIN credit_notes n USING (credit_note_id) WHERE n.bill_id = ANY($1::text[])',
  idempotency_keys: 'SELECT * FROM idempotency_keys WHERE key = ANY($2::text[])',
  webhook_endpoints: 'SELECT * FROM webhook_endpoints WHERE url = ANY($3::text[])',
  webhook_events: `SELECT * FROM webhook_events WHERE payload->'data'->>'bill_id' = ANY($1::text[])
    OR event_id IN (SELECT d.event_id FROM webhook_deliveries d JOIN webhook_endpoints e USING (webhook_id) WHERE e.url = ANY($3::text[]))`,
  webhook_deliveries: `SELECT d.* FROM webhook_deliveries d JOIN webhook_events v USING (event_id) LEFT JOIN webhook_endpoints e USING (webhook_id)
    WHERE v.payload->'data'->>'bill_id' = ANY($1::text[]) OR e.url = ANY($3::text[])`,
};

/**
 * The rows a request could have written about `scope`, table by table, as a count and a digest of
 * their content: a refused request must leave them unchanged. Only the test's own rows, so what
 * other bills of the file do meanwhile (an invoice numbered on its own, say) cannot disturb it.
 */
export async function rowsOf(db: Db, scope: RowScope): Promise<Record<string, string>> {
  const rows: Record<string, string> = {};
  const given = [scope.bills ?? [], scope.keys ?? [], scope.webhookUrls ?? []];
  for (const [table, sql] of Object.entries(SCOPED)) {
    // Postgres refuses parameters a statement does not use: number them as this query uses them.
    const used = [1, 2, 3].filter((n) => sql.includes(`$${n}`));
    const text = used.reduce((q, n, i) => q.replaceAll(`$${n}`, `$${i + 1}`), sql);
    const { rows: r } = await db.query(
      `SELECT count(*)::int AS n, md5(COALESCE(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM (${text}) x`,
      used.map((n) => given[n - 1]),
    );
    rows[table] = `${r[0].n} ${r[0].h}`;
  }
  return rows;
}

/** Rows in every table a request could write (fuzz.test.ts digests them whole, having one stack to itself). */
export async function tableCounts(db: Db): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const t of WRITABLE_TABLES) counts[t] = Number((await db.query(`SELECT count(*) FROM ${t}`)).rows[0].count);
  return counts;
}

/** The bill's workflow's own numbers: what it would answer GET /bills/:id with. */
export function liveTotals(stack: Stack, billId: string): Promise<LiveBill> {
  return stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).query(getBillQuery);
}

/** How often the bill's (last) workflow run reported live totals that differ from the ledger at close. */
export async function mismatchReports(stack: Stack, billId: string): Promise<number> {
  const { events } = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).fetchHistory();
  return (events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'reportTotalsMismatch').length;
}

/** The ledger's sums for a bill, straight from its rows. */
export async function ledgerSums(stack: Stack, billId: string): Promise<{ n: number; total: string }> {
  const { rows } = await stack.db.query(
    'SELECT count(*)::int AS n, coalesce(sum(amount), 0)::text AS total FROM line_items WHERE bill_id = $1',
    [billId],
  );
  return rows[0];
}

/**
 * The crashing worker (helpers/crashing-worker.ts) on the stack's task queue, one process (node
 * with tsx's loader, not the tsx wrapper) so its own SIGKILL is what `exited` sees. Resolves once
 * it polls; stop the stack's own worker first.
 */
export async function startCrashingWorker(
  stack: Stack,
  crashAt: 'deliverInvoice' | 'after-ledger-write' | 'when-killed',
  env: Record<string, string> = {},
): Promise<{ exited: Promise<NodeJS.Signals | null>; kill: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'crashing-worker.ts')], {
    cwd: path.resolve(__dirname, '..', '..'),
    env: {
      ...process.env,
      ...KILLED_WORKER_ENV,
      ...env,
      CRASH_AT: crashAt,
      ...stackEnv(stack),
    } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', openSync(runLogPath('child-processes'), 'a')],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', () => reject(new Error('crashing worker exited before it was ready')));
  });
  return { exited, kill: () => child.kill('SIGKILL') };
}

/**
 * A second API host on the stack's database, Temporal and secrets key, with `env` as its settings:
 * a setting the API reads (not the worker) is tried without a stack of its own.
 */
export async function withApiHost<T>(stack: Stack, env: Record<string, string>, fn: (host: Stack) => Promise<T>): Promise<T> {
  const config = loadConfig({ ...stackEnv(stack), ...env });
  const app = buildServer({ ...stack.deps, config }, { logLevel: 'warn', logStream: runLogStream('service') });
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    return await fn({ ...stack, config, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` });
  } finally {
    await app.close();
  }
}

/** The settings another process of this stack needs: its database, Temporal, task queue, data and secrets key. */
function stackEnv(stack: Stack): Record<string, string> {
  return {
    DATABASE_URL: stack.config.databaseUrl!,
    TEMPORAL_ADDRESS: stack.config.temporal.address!,
    TEMPORAL_TASK_QUEUE: stack.config.temporal.taskQueue,
    DATA_DIR: stack.config.dataDir,
    WEBHOOK_SECRETS_KEY: TEST_WEBHOOK_SECRETS_KEY,
    LOG_LEVEL: 'warn',
    ...suiteEncryptionEnv(),
  };
}
