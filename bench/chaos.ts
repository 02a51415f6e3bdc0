/**
 * Fault drills: real load against the real stack on loopback (its own embedded Postgres and
 * Temporal dev server, the API and the worker as separate processes), one fault per drill, then
 * the invariants: every acknowledged line item stored exactly once, nothing else stored, and per
 * bill the workflow's totals, the stored totals and the sum of the line items agree
 * (reconciliation). The webhooks drill closes bills for a flaky receiver with the worker killed
 * midway: every event delivered at least once, signed, and a copy only ever under its own id.
 * The invoices drill closes bills at once with the worker killed while their invoices are
 * numbered, opened, rendered and emailed, then pays each in two parts per currency with the worker
 * killed again midway: every invoice finalized and sent once under a unique number, every
 * acknowledged payment recorded exactly once, every invoice paid, its balances agreeing with its
 * payments, credit notes and bill totals, and one outbox event per fact.
 * Each drill prints what it did and its verdict; the exit code is 1 if one fails.
 *
 * The usage drill sends events from 16 clients with retries while the worker and then the API are
 * killed: every acknowledged event stored once and rated once by its bill's close.
 *
 *   npm run chaos -- [--quick] [--only worker_kill,api_kill,temporal_restart,postgres_outage,close_races,webhooks,invoices,usage]
 */
import { randomUUID } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { reconcile } from '../bills/reconcile';
import { FeesApiError, FeesClient } from '../client';
import { createPool, type Db } from '../core/db';
import { startEmbeddedPostgres } from '../host/postgres';
import { startTemporalDevServer } from '../host/temporal-dev';
import { connectClient } from '../core/temporal';
import { loadConfig, type Config } from '../core/config';
import { freeClusterPorts, startCluster, untilReady, type Cluster, type ServiceProcess } from '../host/cluster';
import { sleep, spawnHost, startSplitStack, stopSplitStack, tempDataDir, type SplitStack } from './launch';

const DRILLS = ['worker_kill', 'api_kill', 'temporal_restart', 'postgres_outage', 'close_races', 'webhooks', 'invoices', 'usage'] as const;
type Drill = (typeof DRILLS)[number];

/** The drills across processes (`--cluster`): the Temporal server on Postgres, two APIs, two workers. */
const CLUSTER_DRILLS = ['worker_kill', 'temporal_kill', 'api_kill', 'postgres_restart', 'rolling_restart'] as const;
type ClusterDrill = (typeof CLUSTER_DRILLS)[number];

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, cluster: { type: 'boolean', default: false } },
});
const quick = args.quick!;
const onCluster = args.cluster!;
const known: readonly string[] = onCluster ? CLUSTER_DRILLS : DRILLS;
const only = args.only ? args.only.split(',') : [...known];
for (const d of only)
  if (!known.includes(d)) throw new Error(`unknown drill ${d}; drills${onCluster ? ' on the cluster' : ''}: ${known.join(', ')}`);

const SIZE = {
  items: quick ? 200 : 1000,
  concurrency: 16,
  bills: quick ? 5 : 20,
  postgresDownMs: quick ? 4000 : 10_000,
  raceRounds: quick ? 5 : 20,
  raceAdds: 20,
  closes: quick ? 60 : 1000,
  invoices: quick ? 20 : 200,
};
/** A client keeps retrying an unacknowledged request this long (same idempotency key). */
const RETRY_FOR_MS = 180_000;

// ---------------------------------------------------------------------------------------------
// The stack, every part of which a drill can stop

interface Stack extends SplitStack {
  db: Db;
}

/** What the invariants read: our database, and Temporal (reconciliation queries the open bills). */
interface Checked {
  db: Db;
  config: Config;
  temporal: { address: string };
}

async function startStack(): Promise<Stack> {
  const stack = await startSplitStack('fees-chaos-', {
    // Activities retry a failing database every second at most, so recovery shows within the drill.
    BILL_RETRY_MAX_INTERVAL_MS: '1000',
    // Quick: updates with no worker to take them give up sooner (and idempotency keys held by a
    // killed API free up sooner, at twice that), so the client's retries come round faster.
    // Activities lost with a killed worker are retried after their timeout (BILL_ACTIVITY_TIMEOUT_MS).
    // An invoice step lost with a killed worker (numbering, PDF, email) is retried after
    // POSTPROCESS_ACTIVITY_TIMEOUT_MS (default a minute), which must stay above SMTP_TIMEOUT_MS.
    ...(quick
      ? { UPDATE_TIMEOUT_MS: '4000', BILL_ACTIVITY_TIMEOUT_MS: '5000', POSTPROCESS_ACTIVITY_TIMEOUT_MS: '8000', SMTP_TIMEOUT_MS: '5000' }
      : {}),
    // Webhook retries within seconds rather than hours, so every 500 is retried within the drill.
    // An attempt lost with a killed worker is retried after this timeout and 5 s; the receiver
    // answers within 200 ms. None of it touches what the other drills measure.
    WEBHOOK_RETRY_INITIAL_MS: '200',
    WEBHOOK_RETRY_MAX_INTERVAL_MS: '2000',
    WEBHOOK_TIMEOUT_MS: '3000',
  });
  return { ...stack, db: createPool(stack.postgres.url, 4) };
}

async function stopStack(s: Stack): Promise<void> {
  await s.db.end().catch(() => undefined);
  await stopSplitStack(s);
}

// ---------------------------------------------------------------------------------------------
// The service's own client retries every unacknowledged request with its idempotency key; the
// drill counts what it was told

interface Reply {
  status: number;
  body: any;
}

/** Every status a drill's client saw ('network' for a refused or dropped connection). */
type Seen = Map<string, number>;
const see = (seen: Seen, what: string) => seen.set(what, (seen.get(what) ?? 0) + 1);
const showSeen = (seen: Seen) =>
  [...seen]
    .sort()
    .map(([k, n]) => `${k}×${n}`)
    .join(' ');

/** One answer, no retry (the reads during an outage, the webhook calls the client lacks). */
async function request(url: string, method: string, p: string, body?: unknown): Promise<Reply> {
  const res = await fetch(url + p, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The typed client, retrying for up to RETRY_FOR_MS, recording every answer in `seen`. */
function clientFor(s: Stack, seen: Seen): FeesClient {
  return new FeesClient({
    baseUrl: s.url,
    timeoutMs: RETRY_FOR_MS,
    retry: { maxAttempts: 10_000, initialDelayMs: 50, maxDelayMs: 2000 },
    fetch: async (input, init) => {
      try {
        const res = await fetch(input, init);
        see(seen, String(res.status));
        return res;
      } catch (err) {
        see(seen, 'network');
        throw err;
      }
    },
  });
}

interface Add {
  bill: string;
  amount: number;
  /** The line item id of an acknowledged add; undefined when rejected. */
  acked?: string;
  rejected?: string;
}

async function createBills(c: FeesClient, n: number, periodS = 24 * 3600): Promise<string[]> {
  const end = new Date(Date.now() + periodS * 1000).toISOString();
  return Promise.all(Array.from({ length: n }, async () => (await c.createBill({ billing_period_end: end })).bill_id));
}

async function addOne(c: FeesClient, bill: string, amount: number): Promise<Add> {
  try {
    const added = await c.addLineItem(bill, { amount, currency: 'USD', description: `chaos ${amount}` });
    return { bill, amount, acked: added.line_item.line_item_id };
  } catch (err) {
    // A definitive refusal; anything else (the retry deadline) fails the drill.
    if (err instanceof FeesApiError && err.status >= 400 && err.status < 500) return { bill, amount, rejected: err.code };
    throw err;
  }
}

/** `n` adds over `bills` by `concurrency` clients; `progress` counts acknowledged ones. */
function addMany(c: FeesClient, bills: string[], n: number, progress: { acked: number; times?: number[] }): Promise<Add[]> {
  const adds: Add[] = [];
  let next = 0;
  return Promise.all(
    Array.from({ length: SIZE.concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const add = await addOne(c, bills[i % bills.length], 1 + Math.floor(Math.random() * 1000));
        if (add.acked) {
          progress.acked++;
          progress.times?.push(Date.now());
        }
        adds.push(add);
      }
    }),
  ).then(() => adds);
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** `fn` over `items` with at most `limit` calls in flight; the results in the items' order. */
async function inParallel<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i], i);
      }
    }),
  );
  return results;
}

// ---------------------------------------------------------------------------------------------
// Invoices: payments, each sent under its own idempotency key until it gets a definitive answer

interface Pay {
  bill: string;
  currency: string;
  amount: number;
  /** The Idempotency-Key of every attempt of this payment. */
  key: string;
  /** The payment id of an acknowledged payment. */
  acked?: string;
  /** Otherwise what the client was last told: a refusal, a 500, or nothing definitive in time. */
  failed?: string;
}

async function payOne(c: FeesClient, p: Pay): Promise<void> {
  try {
    const { payment } = await c.recordPayment(
      p.bill,
      { amount: p.amount, currency: p.currency, reference: `chaos ${p.key}` },
      { idempotencyKey: p.key },
    );
    if (payment.bill_id !== p.bill || payment.currency !== p.currency || payment.amount !== p.amount) {
      p.failed = `acknowledged as ${JSON.stringify(payment)}`;
    } else p.acked = payment.payment_id;
  } catch (err) {
    // Recorded, whatever it is (a refusal, a 500, the retry deadline), so that the drill goes on
    // to show what the payments left behind.
    if (!(err instanceof FeesApiError)) throw err;
    p.failed = `${err.status || 'no answer:'} ${err.code}: ${err.message} (${err.attempts} attempts)`;
  }
}

const byBill = <T extends { bill: string }>(xs: T[]) => {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(x.bill, [...(m.get(x.bill) ?? []), x]);
  return m;
};

/**
 * What is wrong with the invoice accounts, if anything: every balance (of every invoice in this
 * stack's database) agrees with its payments, credit notes and bill totals, and never goes past
 * its total; every currency of a finalized bill has a balance and every payment one to count in.
 */
async function accountInvariants(s: Checked): Promise<{ balances: number; problems: string[] }> {
  const problems: string[] = [];
  const { rows } = await s.db.query<{
    bill_id: string;
    currency: string;
    total: string;
    credited: string;
    paid: string;
    payments: string;
    credits: string;
    bill_total: string | null;
  }>(
    `SELECT b.bill_id, b.currency, b.total::text, b.credited::text, b.paid::text,
            (SELECT coalesce(sum(p.amount), 0) FROM invoice_payments p WHERE p.bill_id = b.bill_id AND p.currency = b.currency)::text AS payments,
            (SELECT coalesce(sum(l.amount), 0) FROM credit_note_lines l JOIN credit_notes n USING (credit_note_id)
              WHERE n.bill_id = b.bill_id AND l.currency = b.currency)::text AS credits,
            (SELECT t.amount FROM bill_totals t WHERE t.bill_id = b.bill_id AND t.currency = b.currency)::text AS bill_total
       FROM invoice_balances b`,
  );
  for (const r of rows) {
    const at = `${r.bill_id} ${r.currency}`;
    if (BigInt(r.paid) !== BigInt(r.payments)) problems.push(`${at}: paid ${r.paid}, its payments sum to ${r.payments}`);
    if (BigInt(r.credited) !== BigInt(r.credits)) problems.push(`${at}: credited ${r.credited}, its credit notes sum to ${r.credits}`);
    if (r.bill_total === null || BigInt(r.total) !== BigInt(r.bill_total))
      problems.push(`${at}: total ${r.total}, the bill's ${r.bill_total}`);
    if (BigInt(r.credited) + BigInt(r.paid) > BigInt(r.total))
      problems.push(`${at}: credited ${r.credited} + paid ${r.paid} > total ${r.total}`);
  }
  const orphans = await s.db.query<{ what: string; bill_id: string; currency: string }>(
    `SELECT 'a bill total without a balance' AS what, t.bill_id, t.currency FROM bill_totals t JOIN invoice_accounts a USING (bill_id)
      WHERE t.amount > 0 AND NOT EXISTS (SELECT 1 FROM invoice_balances b WHERE b.bill_id = t.bill_id AND b.currency = t.currency)
     UNION ALL
     SELECT 'a payment without a balance', p.bill_id, p.currency FROM invoice_payments p
      WHERE NOT EXISTS (SELECT 1 FROM invoice_balances b WHERE b.bill_id = p.bill_id AND b.currency = p.currency)`,
  );
  for (const o of orphans.rows) problems.push(`${o.bill_id} ${o.currency}: ${o.what}`);
  return { balances: rows.length, problems };
}

// ---------------------------------------------------------------------------------------------
// The invariants

/**
 * What is wrong with these bills, if anything: [] when every invariant holds. Only a close race
 * may refuse an add (as `failed_precondition`); any refusal elsewhere is a problem.
 */
async function invariants(s: Checked, bills: string[], adds: Add[], closing = false): Promise<string[]> {
  const problems: string[] = [];
  for (const a of adds.filter((x) => x.rejected && !(closing && x.rejected === 'failed_precondition'))) {
    problems.push(`an add to ${a.bill} was refused: ${a.rejected}`);
  }
  const { rows } = await s.db.query<{ line_item_id: string; bill_id: string; amount: string }>(
    'SELECT line_item_id, bill_id, amount FROM line_items WHERE bill_id = ANY($1)',
    [bills],
  );
  const stored = new Map(rows.map((r) => [r.line_item_id, r]));
  const acked = adds.filter((a) => a.acked);
  const ackedIds = new Set(acked.map((a) => a.acked!));
  for (const a of acked) {
    const row = stored.get(a.acked!);
    if (!row) problems.push(`acknowledged line item ${a.acked} of ${a.bill} is not stored`);
    else if (Number(row.amount) !== a.amount || row.bill_id !== a.bill) problems.push(`line item ${a.acked} stored with other data`);
  }
  if (ackedIds.size !== acked.length) problems.push(`${acked.length - ackedIds.size} acknowledgements share a line item id`);
  for (const r of rows)
    if (!ackedIds.has(r.line_item_id)) problems.push(`line item ${r.line_item_id} of ${r.bill_id} is stored but was never acknowledged`);
  const report = await reconcile({ db: s.db, temporal: await temporalClient(s), config: s.config }, { billIds: bills });
  for (const d of report.differences) problems.push(`reconciliation: ${d.bill_id} ${d.kind}`);
  return problems;
}

let client: Awaited<ReturnType<typeof connectClient>> | undefined;
async function temporalClient(s: Checked) {
  client ??= await connectClient(s.config, s.temporal.address);
  return client;
}

// ---------------------------------------------------------------------------------------------
// A flaky webhook receiver

/** One request the receiver got. */
interface Received {
  /** webhook-id */
  id: string;
  type: string;
  /** The bill its data names. */
  bill: string | undefined;
  body: string;
  /** 200, 500 (the flaky three in ten) or 401 (its signature did not verify). */
  answered: number;
  at: number;
}

interface Receiver {
  url: string;
  /** The endpoint's signing secret, known once it is registered. */
  secret: string;
  received: Received[];
  /** Requests that were not a signed event. */
  problems: string[];
  close: () => Promise<void>;
}

const FLAKY_RATE = 0.3;
const MAX_DELAY_MS = 200;

const flatHeaders = (h: IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));

/** Checks each request's signature, takes 0-200 ms, then fails three requests in ten with a 500. */
async function startReceiver(): Promise<Receiver> {
  const r: Receiver = { url: '', secret: '', received: [], problems: [], close: async () => undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id'] ?? '');
      let verified = true;
      try {
        new Webhook(r.secret).verify(body, flatHeaders(req.headers));
      } catch (err) {
        verified = false;
        r.problems.push(`a request with webhook-id ${id || '(none)'} did not verify: ${(err as Error).message}`);
      }
      let event: { id?: string; type?: string; data?: { bill_id?: string } } = {};
      try {
        event = JSON.parse(body);
      } catch {
        r.problems.push(`a request with webhook-id ${id || '(none)'} is not JSON`);
      }
      if (event.id !== id) r.problems.push(`webhook-id ${id} carries a body with id ${event.id}`);
      setTimeout(() => {
        const answered = !verified ? 401 : Math.random() < FLAKY_RATE ? 500 : 200;
        r.received.push({ id, type: event.type ?? '', bill: event.data?.bill_id, body, answered, at: Date.now() });
        res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered === 200 ? 'ok' : 'flaky');
      }, Math.random() * MAX_DELAY_MS);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  r.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}

// ---------------------------------------------------------------------------------------------
// The drills

interface Verdict {
  drill: string;
  ok: boolean;
  seconds: number;
  summary: string;
  problems: string[];
}

const describeAdds = (adds: Add[]) =>
  `${adds.filter((a) => a.acked).length} acknowledged, ${adds.filter((a) => a.rejected).length} rejected`;

/** Adds under load while `fault` runs once a quarter of them is acknowledged. */
async function underLoad(
  c: FeesClient,
  fault: () => Promise<string>,
): Promise<{ bills: string[]; adds: Add[]; what: string; faultAt: number; ackTimes: number[] }> {
  const bills = await createBills(c, SIZE.bills);
  const progress = { acked: 0, times: [] as number[] };
  const load = addMany(c, bills, SIZE.items, progress);
  await until('a quarter of the adds', () => progress.acked >= SIZE.items / 4);
  const faultAt = Date.now();
  const what = await fault();
  return { bills, adds: await load, what, faultAt, ackTimes: progress.times };
}

/** SIGKILL (a crash, mid-request), then a new process of the same kind on the same port. */
async function killAndRestart(s: Stack, which: 'api' | 'worker'): Promise<string> {
  const at = Date.now();
  await s[which].kill();
  await sleep(1000);
  s[which] = await spawnHost(which, s.env);
  return `${which === 'api' ? 'API' : 'worker'} SIGKILLed, restarted after ${((Date.now() - at) / 1000).toFixed(1)} s`;
}

const drills: Record<Drill, (s: Stack, c: FeesClient) => Promise<{ summary: string; problems: string[] }>> = {
  async worker_kill(s, c) {
    const { bills, adds, what } = await underLoad(c, () => killAndRestart(s, 'worker'));
    return {
      summary: `${SIZE.items} adds at concurrency ${SIZE.concurrency}; ${what}; ${describeAdds(adds)}`,
      problems: await invariants(s, bills, adds),
    };
  },

  async api_kill(s, c) {
    const { bills, adds, what } = await underLoad(c, () => killAndRestart(s, 'api'));
    return {
      summary: `${SIZE.items} adds; ${what}; clients retried with the same keys; ${describeAdds(adds)}`,
      problems: await invariants(s, bills, adds),
    };
  },

  async temporal_restart(s, c) {
    const problems: string[] = [];
    // A bill whose timer is set before the restart and due after it.
    const periodS = quick ? 12 : 25;
    const [timed] = await createBills(c, 1, periodS);
    const timedAdd = await addOne(c, timed, 42);
    // Quiet bills: their totals before the restart must be their totals after it.
    const quiet = await createBills(c, 3);
    const quietAdds = await Promise.all(quiet.flatMap((b) => [addOne(c, b, 10), addOne(c, b, 20)]));
    const totalsOf = (b: string) => c.getBill(b);
    const before = await Promise.all(quiet.map(totalsOf));
    const { bills, adds, what } = await underLoad(c, async () => {
      const at = Date.now();
      await s.temporal.stop();
      await sleep(1000);
      s.temporal = await startTemporalDevServer(s.config);
      return `dev server stopped and restarted on its state file in ${((Date.now() - at) / 1000).toFixed(1)} s, under load`;
    });
    const after = await Promise.all(quiet.map(totalsOf));
    quiet.forEach((b, i) => {
      if (after[i].totals_source !== 'live') problems.push(`${b}: totals not live after the restart`);
      if (JSON.stringify(after[i].totals) !== JSON.stringify(before[i].totals)) {
        problems.push(`${b}: totals ${JSON.stringify(before[i].totals)} before the restart, ${JSON.stringify(after[i].totals)} after`);
      }
    });
    const later = await Promise.all(bills.map((b) => addOne(c, b, 7)));
    for (const a of later) if (!a.acked) problems.push(`${a.bill}: a new line item after the restart was refused (${a.rejected})`);
    await until(
      'the timer set before the restart to close its bill',
      async () => (await c.getBill(timed)).status === 'closed',
      (periodS + 60) * 1000,
    );
    const closed = await c.getBill(timed);
    if (closed.totals[0]?.amount !== 42) problems.push(`${timed}: closed by its timer with totals ${JSON.stringify(closed.totals)}`);
    problems.push(...(await invariants(s, [...bills, ...quiet, timed], [...adds, ...later, ...quietAdds, timedAdd])));
    return {
      summary:
        `${SIZE.items} adds; ${what}; ${describeAdds(adds)}; ${quiet.length} quiet bills kept their totals, ${later.filter((a) => a.acked).length}/${bills.length} adds accepted after it, ` +
        `the ${periodS} s timer closed its bill at ${closed.closed_at}`,
      problems,
    };
  },

  async postgres_outage(s, c) {
    const reads = new Map<string, number>();
    let slowest = 0;
    let readProblems: string[] = [];
    const { bills, adds, what } = await underLoad(c, async () => {
      const [probe] = await createBills(c, 1);
      const at = Date.now();
      await s.postgres.stop();
      // Reads while Postgres is down: an answer each, quickly, 503 at worst.
      while (Date.now() - at < SIZE.postgresDownMs) {
        for (const p of [`/bills/${probe}`, '/bills?status=open']) {
          const t = Date.now();
          try {
            const r = await request(s.url, 'GET', p);
            see(reads, String(r.status));
            if (r.status !== 503 && r.status !== 200) readProblems.push(`GET ${p} answered ${r.status} while Postgres was down`);
            if (r.status === 503 && r.body?.code !== 'unavailable') readProblems.push(`GET ${p}: 503 with code ${r.body?.code}`);
          } catch (err) {
            readProblems.push(`GET ${p} failed while Postgres was down: ${(err as Error).message}`);
          }
          slowest = Math.max(slowest, Date.now() - t);
        }
        await sleep(250);
      }
      s.postgres = await startEmbeddedPostgres(s.config);
      return `Postgres stopped for ${((Date.now() - at) / 1000).toFixed(1)} s during ingestion`;
    });
    if (slowest > 5000) readProblems.push(`a read took ${slowest} ms while Postgres was down`);
    readProblems = [...new Set(readProblems)];
    return {
      summary: `${SIZE.items} adds; ${what}; reads meanwhile: ${showSeen(reads)}, slowest ${slowest} ms; ${describeAdds(adds)}`,
      problems: [...readProblems, ...(await invariants(s, bills, adds))],
    };
  },

  async close_races(s, c) {
    const problems: string[] = [];
    let before = 0;
    let after = 0;
    const bills: string[] = [];
    const all: Add[] = [];
    for (let round = 0; round < SIZE.raceRounds; round++) {
      const [bill] = await createBills(c, 1);
      bills.push(bill);
      const adds = Array.from({ length: SIZE.raceAdds }, (_, i) => addOne(c, bill, 1 + i));
      const close = sleep(Math.random() * 30).then(() => c.closeBill(bill));
      const [results, closed] = await Promise.all([Promise.all(adds), close]);
      all.push(...results);
      for (const a of results) {
        if (a.acked) before++;
        else if (a.rejected === 'failed_precondition') after++;
        else problems.push(`${bill}: an add ended with ${a.rejected}, neither landed nor refused as closed`);
      }
      const sum = results.filter((a) => a.acked).reduce((n, a) => n + a.amount, 0);
      const final = closed.bill.totals[0]?.amount ?? 0;
      if (final !== sum) problems.push(`${bill}: closed with ${final}, acknowledged adds sum to ${sum}`);
    }
    problems.push(...(await invariants(s, bills, all, true)));
    return {
      summary: `${SIZE.raceRounds} rounds of ${SIZE.raceAdds} adds racing a close: ${before} landed before the close, ${after} refused as closed`,
      problems,
    };
  },

  async webhooks(s, c) {
    const problems: string[] = [];
    const types = ['bill.created', 'bill.closed'];
    const receiver = await startReceiver();
    let hook: { webhook_id: string; secret: string } | undefined;
    try {
      const created = await request(s.url, 'POST', '/webhooks', {
        url: receiver.url,
        events: types,
        description: 'chaos: a flaky receiver',
      });
      if (created.status !== 201 && created.status !== 200)
        throw new Error(`POST /webhooks answered ${created.status}: ${JSON.stringify(created.body)}`);
      hook = created.body as { webhook_id: string; secret: string };
      receiver.secret = hook.secret;
      const webhookId = hook.webhook_id;

      // Each bill created then closed, by `concurrency` clients; the worker is killed halfway. A
      // refused create or close is a problem, and the events are checked for what did happen.
      const bills: string[] = [];
      const progress = { done: 0 };
      const end = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
      const began = Date.now();
      let next = 0;
      const load = Promise.all(
        Array.from({ length: SIZE.concurrency }, async () => {
          while (next < SIZE.closes) {
            next++;
            let bill: string | undefined;
            try {
              bill = (await c.createBill({ billing_period_end: end })).bill_id;
              bills.push(bill);
              await c.closeBill(bill);
            } catch (err) {
              const e = err as FeesApiError;
              problems.push(`${bill ? `closing ${bill}` : 'creating a bill'} failed: ${e.status ?? ''} ${e.code ?? ''} ${e.message}`);
            }
            progress.done++;
          }
        }),
      );
      let settled = false;
      void load.then(
        () => (settled = true),
        () => (settled = true),
      );
      // A close is a workflow update, an invoice PDF and two deliveries: a few per second on a small machine.
      await until('half the closes', () => settled || progress.done >= SIZE.closes / 2, SIZE.closes * 1000);
      const killedAt = Date.now();
      const what = settled ? 'the closes ended before the worker could be killed' : await killAndRestart(s, 'worker');
      await load;
      const closedAt = Date.now();
      const closed = (
        await s.db.query<{ bill_id: string }>(`SELECT bill_id FROM bills WHERE bill_id = ANY($1) AND status = 'closed'`, [bills])
      ).rows.map((r) => r.bill_id);

      const expected: Record<string, string[]> = { 'bill.created': bills, 'bill.closed': closed };
      const okBills = (type: string) => new Set(receiver.received.filter((x) => x.answered === 200 && x.type === type).map((x) => x.bill));
      const missing = () =>
        types.flatMap((t) => {
          const got = okBills(t);
          return expected[t].filter((b) => !got.has(b)).map((b) => `${t} of ${b}`);
        });
      await until('every event answered 2xx by the receiver', () => missing().length === 0, 180_000).catch(() => {
        const lost = missing();
        problems.push(`${lost.length} events never answered 2xx, e.g. ${lost.slice(0, 5).join(', ')}`);
      });
      const lastOk = Math.max(closedAt, ...receiver.received.filter((x) => x.answered === 200).map((x) => x.at));
      // A 2xx is recorded after it is answered; a delivery whose answer came too late is retried.
      const pending = async () =>
        (
          await s.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'pending'`,
            [webhookId],
          )
        ).rows[0].n;
      await until('no delivery pending', async () => (await pending()) === 0, 60_000).catch(async () =>
        problems.push(`${await pending()} deliveries still pending`),
      );
      const listed = await request(s.url, 'GET', `/webhooks/${webhookId}/deliveries?status=pending&limit=1`);
      if (listed.status !== 200 || listed.body.deliveries.length !== 0)
        problems.push(`GET deliveries?status=pending answered ${listed.status} ${JSON.stringify(listed.body).slice(0, 200)}`);

      // What the receiver got: signed events of the drill's bills, one id per bill and type,
      // every copy of an id the same bytes.
      problems.push(...new Set(receiver.problems));
      const ours = Object.fromEntries(types.map((t) => [t, new Set(expected[t])]));
      const byId = new Map<string, Received[]>();
      for (const x of receiver.received) {
        if (!types.includes(x.type)) problems.push(`event ${x.id} of type ${x.type}, not subscribed`);
        else if (!x.bill || !ours[x.type].has(x.bill))
          problems.push(`${x.type} ${x.id} names ${x.bill}, which the drill did not ${x.type.slice(5, -1)}`);
        byId.set(x.id, [...(byId.get(x.id) ?? []), x]);
      }
      const idsOf = new Map<string, Set<string>>();
      // A copy after a 2xx is expected where the worker died between the answer and recording it.
      let duplicates = 0;
      let nearKill = 0;
      for (const [id, copies] of byId) {
        if (copies.some((x) => x.body !== copies[0].body)) problems.push(`event ${id} arrived with different bodies`);
        const firstOk = copies.find((x) => x.answered === 200);
        const later = firstOk ? copies.filter((x) => x.at > firstOk.at).length : 0;
        duplicates += later;
        if (firstOk && Math.abs(firstOk.at - killedAt) < 3000) nearKill += later;
        const key = `${copies[0].type} of ${copies[0].bill}`;
        idsOf.set(key, new Set([...(idsOf.get(key) ?? []), id]));
      }
      for (const [key, ids] of idsOf) if (ids.size > 1) problems.push(`${key} arrived under ${ids.size} event ids: ${[...ids].join(', ')}`);

      // What Postgres says: one delivery per event, each succeeded, and at least as many attempts
      // claimed as requests arrived (a request with no claim would be a send the claims missed).
      const { rows } = await s.db.query<{ event_id: string; status: string; attempts: number }>(
        'SELECT event_id, status, attempts FROM webhook_deliveries WHERE webhook_id = $1',
        [webhookId],
      );
      const statuses: Seen = new Map();
      for (const d of rows) {
        see(statuses, d.status);
        const arrived = byId.get(d.event_id)?.length ?? 0;
        if (arrived > d.attempts) problems.push(`event ${d.event_id} arrived ${arrived} times, ${d.attempts} attempts recorded`);
      }
      if (statuses.size !== 1 || !statuses.has('succeeded')) problems.push(`deliveries: ${showSeen(statuses)}, not all succeeded`);
      if (rows.length !== byId.size) problems.push(`${rows.length} deliveries for ${byId.size} distinct events received`);
      if (rows.length !== bills.length + closed.length)
        problems.push(`${rows.length} deliveries for ${bills.length} bills created and ${closed.length} closed`);
      const stored = new Set(rows.map((d) => d.event_id));
      for (const id of byId.keys()) if (!stored.has(id)) problems.push(`event ${id} was received but has no delivery`);

      const answered: Seen = new Map();
      for (const x of receiver.received) see(answered, String(x.answered));
      return {
        summary:
          `${bills.length} bills created, ${closed.length} closed at concurrency ${SIZE.concurrency} in ${((closedAt - began) / 1000).toFixed(1)} s; ${what}; ` +
          `${byId.size} events (${types.join(', ')}) for a receiver failing ${FLAKY_RATE * 100}% with 0-${MAX_DELAY_MS} ms delays: ` +
          `${receiver.received.length} requests (${showSeen(answered)}), ${duplicates} duplicates after a 2xx (${nearKill} of them answered within 3 s of the kill), ` +
          `at most ${Math.max(0, ...rows.map((d) => d.attempts))} attempts for one delivery; ` +
          `the last delivered ${((lastOk - closedAt) / 1000).toFixed(1)} s after the last close (${((lastOk - began) / 1000).toFixed(1)} s after the first)`,
        problems,
      };
    } finally {
      // Later drills (and a rerun) are not slowed by deliveries to a receiver that is gone.
      if (hook) await request(s.url, 'DELETE', `/webhooks/${hook.webhook_id}`).catch(() => undefined);
      await receiver.close();
    }
  },

  async invoices(s, c) {
    const problems: string[] = [];
    const n = SIZE.invoices;
    const end = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
    const currencySets = [['USD'], ['EUR'], ['USD', 'EUR'], ['GBP', 'USD']];

    // Bills for customers, each with 1-3 line items in each of its one or two currencies.
    const totals = new Map<string, Map<string, number>>();
    const adds: Add[] = [];
    const bills = await inParallel(
      Array.from({ length: n }, (_, i) => i),
      SIZE.concurrency,
      async (i) => {
        const bill = (await c.createBill({ billing_period_end: end, customer_email: `chaos-${i}@example.com` })).bill_id;
        const sums = new Map<string, number>();
        for (const currency of currencySets[i % currencySets.length]) {
          for (let k = 0; k <= Math.floor(Math.random() * 3); k++) {
            const amount = 100 + Math.floor(Math.random() * 10_000);
            const added = await c.addLineItem(bill, { amount, currency, description: `chaos invoice ${amount} ${currency}` });
            adds.push({ bill, amount, acked: added.line_item.line_item_id });
            sums.set(currency, (sums.get(currency) ?? 0) + amount);
          }
        }
        totals.set(bill, sums);
        return bill;
      },
    );
    const balances = [...totals.values()].reduce((k, m) => k + m.size, 0);

    // Finalization: every bill closed at once; the worker is killed once a fifth of the invoices
    // are numbered, with the rest being numbered, opened, rendered and emailed.
    const progress = async () =>
      (
        await s.db.query<{ numbered: number; accounts: number; sent: number }>(
          `SELECT count(i.bill_id)::int AS numbered, count(a.bill_id)::int AS accounts,
                  count(*) FILTER (WHERE pp.status = 'sent')::int AS sent
             FROM bills b LEFT JOIN invoices i USING (bill_id) LEFT JOIN invoice_accounts a USING (bill_id)
             LEFT JOIN bill_postprocess pp USING (bill_id)
            WHERE b.bill_id = ANY($1)`,
          [bills],
        )
      ).rows[0];
    const closing = { acked: 0 };
    const closesBegan = Date.now();
    const closes = Promise.all(
      bills.map(async (b) => {
        try {
          await c.closeBill(b);
          closing.acked++;
        } catch (err) {
          const e = err as FeesApiError;
          problems.push(`closing ${b} failed: ${e.status ?? ''} ${e.code ?? ''} ${e.message}`);
        }
      }),
    );
    let atKill = await progress();
    await until('a fifth of the invoices numbered', async () => {
      atKill = await progress();
      return atKill.numbered >= Math.max(1, n / 5) || atKill.sent === n;
    });
    const closesAtKill = closing.acked;
    const killedFinalizing =
      atKill.sent === n
        ? 'every invoice was sent before the worker could be killed'
        : `${await killAndRestart(s, 'worker')} with ${closesAtKill}/${n} closes acknowledged, ` +
          `${atKill.numbered} invoices numbered, ${atKill.accounts} accounts opened, ${atKill.sent} sent`;
    await closes;
    let done = atKill;
    const finalized = await until(
      'every invoice finalized and sent',
      async () => {
        done = await progress();
        return done.numbered === n && done.accounts === n && done.sent === n;
      },
      (quick ? 180 : 600) * 1000,
    ).then(
      () => true,
      () => false,
    );
    const finalizedS = (Date.now() - closesBegan) / 1000;
    if (!finalized) {
      problems.push(
        `${finalizedS.toFixed(0)} s after the closes: ${done.numbered}/${n} invoices numbered, ${done.accounts} accounts, ${done.sent} sent`,
      );
      return { summary: `${n} bills closed at once; ${killedFinalizing}; the invoices were not all finalized`, problems };
    }

    // Each bill shows its invoice sent, open and owing its line items; each has one number.
    const prefix = s.config.invoice.numberPrefix;
    const pattern = new RegExp(`^${prefix}-\\d{4}-\\d{6}$`);
    const numbers = new Map<string, string>();
    for (const bill of await inParallel(bills, SIZE.concurrency, (b) => c.getBill(b))) {
      const b = bill.bill_id;
      const inv = bill.invoice;
      if (bill.status !== 'closed') problems.push(`${b}: ${bill.status} after its close`);
      if (!inv || inv.status !== 'sent' || inv.payment_status === null) {
        problems.push(`${b}: finalized and sent in Postgres, its invoice shows ${JSON.stringify(inv)}`);
        continue;
      }
      if (inv.payment_status !== 'open') problems.push(`${b}: payment status ${inv.payment_status} before any payment`);
      const num = inv.invoice_number ?? '';
      if (!pattern.test(num)) problems.push(`${b}: invoice number ${num} is not ${prefix}-<year>-NNNNNN`);
      else if (numbers.has(num)) problems.push(`${num} numbers both ${numbers.get(num)} and ${b}`);
      else numbers.set(num, b);
      const want = totals.get(b)!;
      if (
        inv.amounts.length !== want.size ||
        inv.amounts.some((a) => a.total !== want.get(a.currency) || a.credited || a.paid || a.due !== a.total)
      )
        problems.push(`${b}: invoice amounts ${JSON.stringify(inv.amounts)}, its line items ${JSON.stringify(Object.fromEntries(want))}`);
    }
    const invoiceRows = (
      await s.db.query<{ bill_id: string; invoice_number: string }>(
        'SELECT bill_id, invoice_number FROM invoices WHERE bill_id = ANY($1)',
        [bills],
      )
    ).rows;
    for (const [b, rows] of byBill(invoiceRows.map((r) => ({ ...r, bill: r.bill_id }))))
      if (rows.length !== 1) problems.push(`${b} has ${rows.length} invoices: ${rows.map((r) => r.invoice_number).join(', ')}`);
    for (const r of invoiceRows) {
      if (numbers.size > 0 && numbers.get(r.invoice_number) !== r.bill_id)
        problems.push(`${r.bill_id}: stored as ${r.invoice_number}, shown otherwise`);
    }
    const shared = await s.db.query<{ invoice_number: string; n: number }>(
      'SELECT invoice_number, count(*)::int AS n FROM invoices GROUP BY 1 HAVING count(*) > 1',
    );
    for (const r of shared.rows) problems.push(`${r.invoice_number} numbers ${r.n} invoices`);
    // This stack's database is its own: every sequence it numbered from runs 1..n, its counter at n.
    const sequences = (
      await s.db.query<{ sequence: string; n: number; lo: number; hi: number; counter: number }>(
        `SELECT i.sequence, count(*)::int AS n, min(i.sequence_value)::int AS lo, max(i.sequence_value)::int AS hi, q.last_value::int AS counter
           FROM invoices i JOIN invoice_sequences q USING (sequence) GROUP BY i.sequence, q.last_value`,
      )
    ).rows;
    for (const q of sequences)
      if (q.lo !== 1 || q.hi !== q.n || q.counter !== q.n)
        problems.push(`sequence ${q.sequence}: ${q.n} invoices numbered ${q.lo}-${q.hi}, its counter at ${q.counter}: not gap-free`);
    const outbox = path.join(s.config.dataDir, 'outbox');
    const unmailed = [...numbers.keys()].filter((num) => !existsSync(path.join(outbox, `${num}.eml`)));
    if (unmailed.length)
      problems.push(`${unmailed.length} invoices sent without an email in ${outbox}, e.g. ${unmailed.slice(0, 3).join(', ')}`);
    const sorted = [...numbers.keys()].sort();

    // Payments: two per currency (40 %, then the rest), shuffled so that the parts of a currency and
    // the currencies of a bill race each other, by `concurrency` clients each retrying its payment
    // under the same key; the worker is killed once a third of them are acknowledged.
    const pays: Pay[] = [];
    for (const [bill, sums] of totals) {
      for (const [currency, total] of sums) {
        const first = Math.round(total * 0.4);
        pays.push({ bill, currency, amount: first, key: randomUUID() }, { bill, currency, amount: total - first, key: randomUUID() });
      }
    }
    for (let i = pays.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [pays[i], pays[j]] = [pays[j], pays[i]];
    }
    const paying = { acked: 0 };
    const payBegan = Date.now();
    let paid = false;
    const payments = inParallel(pays, SIZE.concurrency, async (p) => {
      await payOne(c, p);
      if (p.acked) paying.acked++;
    });
    void payments.then(
      () => (paid = true),
      () => (paid = true),
    );
    await until('a third of the payments', () => paid || paying.acked >= pays.length / 3);
    const ackedAtKill = paying.acked;
    const killedPaying = paid
      ? 'the payments ended before the worker could be killed'
      : `${await killAndRestart(s, 'worker')} after ${ackedAtKill}/${pays.length} payments were acknowledged`;
    await payments;
    const paidS = (Date.now() - payBegan) / 1000;

    // Every acknowledged payment stored once, as sent; nothing stored that was not acknowledged.
    for (const p of pays.filter((x) => x.failed)) problems.push(`payment ${p.key} of ${p.amount} ${p.currency} to ${p.bill}: ${p.failed}`);
    const acked = pays.filter((p) => p.acked);
    const ackedIds = new Map(acked.map((p) => [p.acked!, p]));
    if (ackedIds.size !== acked.length) problems.push(`${acked.length - ackedIds.size} acknowledgements share a payment id`);
    const stored = (
      await s.db.query<{ payment_id: string; bill_id: string; currency: string; amount: string }>(
        'SELECT payment_id, bill_id, currency, amount::text FROM invoice_payments WHERE bill_id = ANY($1)',
        [bills],
      )
    ).rows;
    const storedTimes = new Map<string, number>();
    for (const r of stored) storedTimes.set(r.payment_id, (storedTimes.get(r.payment_id) ?? 0) + 1);
    for (const p of acked) {
      const times = storedTimes.get(p.acked!) ?? 0;
      if (times !== 1) problems.push(`acknowledged payment ${p.acked} (${p.amount} ${p.currency} to ${p.bill}) is stored ${times} times`);
    }
    const paidIn = new Map<string, number>();
    for (const r of stored) {
      const p = ackedIds.get(r.payment_id);
      if (!p) problems.push(`payment ${r.payment_id} of ${r.amount} ${r.currency} to ${r.bill_id} is stored but was never acknowledged`);
      else if (p.bill !== r.bill_id || p.currency !== r.currency || p.amount !== Number(r.amount))
        problems.push(
          `payment ${r.payment_id} stored as ${r.amount} ${r.currency} to ${r.bill_id}, sent as ${p.amount} ${p.currency} to ${p.bill}`,
        );
      paidIn.set(`${r.bill_id} ${r.currency}`, (paidIn.get(`${r.bill_id} ${r.currency}`) ?? 0) + Number(r.amount));
    }
    const keys = new Set(pays.map((p) => p.key)).size;
    if (stored.length !== keys) problems.push(`${stored.length} payments stored for ${keys} idempotency keys sent`);
    for (const [bill, sums] of totals) {
      for (const [currency, total] of sums) {
        const sum = paidIn.get(`${bill} ${currency}`) ?? 0;
        if (sum !== total) problems.push(`${bill} ${currency}: payments sum to ${sum}, the invoice to ${total}`);
      }
    }

    // Every invoice paid, as its bill shows it.
    let paidInvoices = 0;
    for (const bill of await inParallel(bills, SIZE.concurrency, (b) => c.getBill(b))) {
      const inv = bill.invoice;
      if (inv?.payment_status === 'paid' && inv.amounts.every((a) => a.paid === a.total && a.due === 0 && !a.credited)) paidInvoices++;
      else problems.push(`${bill.bill_id}: after its payments, invoice ${inv?.payment_status} ${JSON.stringify(inv?.amounts)}`);
    }

    // The outbox: one event per fact, each payment's under its id.
    const events = (
      await s.db.query<{ bill_id: string; type: string; n: number; payment_ids: (string | null)[] }>(
        `SELECT e.bill_id, e.type, count(*)::int AS n, array_agg(e.payment_id) AS payment_ids
           FROM (SELECT type, CASE WHEN type = 'invoice.payment_recorded' THEN payload->'data'->'invoice'->>'bill_id'
                                   ELSE payload->'data'->>'bill_id' END AS bill_id,
                        payload->'data'->'payment'->>'payment_id' AS payment_id
                   FROM webhook_events WHERE type IN ('invoice.finalized', 'invoice.sent', 'invoice.paid', 'invoice.payment_recorded')) e
          WHERE e.bill_id = ANY($1) GROUP BY 1, 2`,
        [bills],
      )
    ).rows;
    const eventCount = (type: string) => events.filter((e) => e.type === type).reduce((k, e) => k + e.n, 0);
    const paysOf = byBill(pays);
    for (const b of bills) {
      const of = (type: string) => events.find((e) => e.bill_id === b && e.type === type);
      for (const type of ['invoice.finalized', 'invoice.sent', 'invoice.paid'])
        if ((of(type)?.n ?? 0) !== 1) problems.push(`${b}: ${of(type)?.n ?? 0} ${type} events`);
      const recorded = of('invoice.payment_recorded');
      const mine = (paysOf.get(b) ?? []).filter((p) => p.acked).map((p) => p.acked!);
      const ids = recorded?.payment_ids ?? [];
      if (ids.length !== mine.length || new Set(ids).size !== ids.length || mine.some((id) => !ids.includes(id)))
        problems.push(`${b}: invoice.payment_recorded for ${JSON.stringify(ids)}, payments acknowledged ${JSON.stringify(mine)}`);
    }
    if (eventCount('invoice.payment_recorded') !== stored.length)
      problems.push(`${eventCount('invoice.payment_recorded')} invoice.payment_recorded events for ${stored.length} payments`);

    // Reconciliation: the bills (line items, totals), every invoice balance in SQL, and the
    // admin endpoint (with invoices once it reports them).
    problems.push(...(await invariants(s, bills, adds)));
    const accounts = await accountInvariants(s);
    problems.push(...accounts.problems);
    const reconciled = await request(s.url, 'GET', '/admin/reconcile');
    const invoicesChecked = reconciled.body?.invoices_checked as number | undefined;
    for (const d of (reconciled.body?.invoice_differences ?? []) as { bill_id: string }[])
      problems.push(`/admin/reconcile: invoice of ${d.bill_id}: ${JSON.stringify(d)}`);
    if (reconciled.status !== 200 || reconciled.body?.ok !== true)
      problems.push(`GET /admin/reconcile answered ${reconciled.status} ${JSON.stringify(reconciled.body).slice(0, 500)}`);

    return {
      summary:
        `${n} bills for customers, ${adds.length} line items, ${balances} currency balances, closed at once; ${killedFinalizing}; ` +
        `all ${n} invoices numbered, opened and sent ${finalizedS.toFixed(1)} s after the closes began (${sorted[0]} … ${sorted[sorted.length - 1]}, unique; ` +
        `${sequences.map((q) => `${q.sequence}: ${q.n} numbers from 1 to ${q.hi}, counter at ${q.counter}`).join(', ')}); ` +
        `${pays.length} payments (40 % then the rest per currency) by ${SIZE.concurrency} clients in random order; ${killedPaying}; ` +
        `${acked.length} acknowledged, ${pays.length - acked.length} not, ${stored.length} stored, ${paidInvoices}/${n} invoices paid ` +
        `${paidS.toFixed(1)} s after the first payment; outbox: ${eventCount('invoice.finalized')} invoice.finalized, ${eventCount('invoice.sent')} invoice.sent, ` +
        `${eventCount('invoice.paid')} invoice.paid, ${eventCount('invoice.payment_recorded')} invoice.payment_recorded; ` +
        `${accounts.balances} balances checked in SQL against payments, credit notes and bill totals; /admin/reconcile ${reconciled.body?.ok === true ? 'ok' : 'NOT ok'} ` +
        `(${invoicesChecked === undefined ? 'bills only: it does not check invoices yet' : `${invoicesChecked} invoices checked`})`,
      problems,
    };
  },
  async usage(s, c) {
    // Usage events from 16 clients, in calls of 25, each call retried as it was (same events)
    // until it is answered; the worker and then the API are killed and restarted midway. Then
    // every bill is closed: each acknowledged event stored once, no other, and each bill's rated
    // line exactly its events (one minor unit each); /admin/reconcile rates them again.
    const problems: string[] = [];
    const meter = `chaos-calls-${randomUUID().slice(0, 8)}`;
    await c.createMeter({ code: meter, name: 'Chaos calls', aggregation: 'count' });
    const end = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
    const bills = await inParallel(
      Array.from({ length: SIZE.bills }, (_, i) => i),
      SIZE.concurrency,
      async () =>
        (await c.createBill({ billing_period_end: end, prices: [{ meter, currency: 'USD', model: 'per_unit', unit_amount_decimal: '1' }] }))
          .bill_id,
    );
    // Enough calls that both kills land while calls are in flight.
    const calls = quick ? 400 : 1600;
    const acked = new Map<string, string>(); // event id → bill
    let retries = 0;
    let done = 0;
    const load = inParallel(
      Array.from({ length: calls }, (_, i) => i),
      SIZE.concurrency,
      async (i) => {
        const events = Array.from({ length: 25 }, (_, k) => ({
          event_id: `e-${i}-${k}`,
          meter,
          bill_id: bills[(i + k) % bills.length],
          timestamp: new Date().toISOString(),
        }));
        for (let attempt = 0; ; attempt++) {
          try {
            const answer = await request(s.url, 'POST', '/events', { events });
            if (answer.status === 200) {
              for (const r of answer.body.results as { event_id: string; status: string }[]) {
                if (r.status === 'accepted' || r.status === 'duplicate')
                  acked.set(r.event_id, events.find((e) => e.event_id === r.event_id)!.bill_id);
                else problems.push(`event ${r.event_id} answered ${JSON.stringify(r)}`);
              }
              done++;
              return;
            }
            if (answer.status < 500) {
              problems.push(`POST /events answered ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
              return;
            }
          } catch {
            // The API is down (killed): retry as a client would.
          }
          retries++;
          if (attempt > 120) {
            problems.push(`a call of 25 events was never answered`);
            return;
          }
          await sleep(250);
        }
      },
    );
    await until('a tenth of the calls', () => done >= calls / 10);
    const killedApi = await killAndRestart(s, 'api');
    const retriedByApiKill = retries;
    const killedWorker = await killAndRestart(s, 'worker');
    const doneAtKills = done;
    await load;
    if (retriedByApiKill === 0) problems.push('no call was retried: the API was killed after the load, so the drill checked nothing');

    // Every bill closed (rated in the close's transaction), then counted.
    await inParallel(bills, SIZE.concurrency, async (b) => {
      await until(`bill ${b} to close`, async () => (await request(s.url, 'POST', `/bills/${b}/close`)).status === 200, 120_000);
    });
    const stored = (
      await s.db.query<{ bill_id: string; event_id: string }>('SELECT bill_id, event_id FROM usage_events WHERE meter = $1', [meter])
    ).rows;
    const storedIds = new Set(stored.map((r) => r.event_id));
    if (storedIds.size !== stored.length) problems.push(`${stored.length - storedIds.size} events stored twice`);
    for (const [id, bill] of acked)
      if (!stored.some((r) => r.event_id === id && r.bill_id === bill)) problems.push(`acknowledged event ${id} is not stored on ${bill}`);
    const sent = new Set(Array.from({ length: calls }, (_, i) => Array.from({ length: 25 }, (_, k) => `e-${i}-${k}`)).flat());
    for (const id of storedIds) if (!sent.has(id)) problems.push(`event ${id} is stored but was never sent`);
    for (const b of bills) {
      const expected = stored.filter((r) => r.bill_id === b).length;
      const bill = await c.getBill(b);
      const amount = bill.totals.find((t) => t.currency === 'USD')?.amount ?? 0;
      if (bill.status !== 'closed' || amount !== expected) problems.push(`${b}: ${bill.status}, rated ${amount} for ${expected} events`);
    }
    const reconciled = await request(s.url, 'GET', '/admin/reconcile');
    for (const d of (reconciled.body?.usage_differences ?? []) as unknown[]) problems.push(`/admin/reconcile: ${JSON.stringify(d)}`);
    return {
      summary:
        `${calls * 25} events in ${calls} calls of 25 by ${SIZE.concurrency} clients to ${bills.length} priced bills; ${killedApi}, then ${killedWorker} ` +
        `(${doneAtKills} calls answered by then); ${retries} retried calls; ${acked.size} events acknowledged, ${stored.length} stored; every bill closed and rated its events exactly; ` +
        `/admin/reconcile rated ${reconciled.body?.usage_checked ?? '?'} bills again: ${(reconciled.body?.usage_differences ?? []).length} differences`,
      problems,
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Across processes (`--cluster`): the stack `npm run cluster` starts (host/cluster.ts), on free
// ports with its state in a temporary directory

interface ClusterTarget extends Checked {
  cluster: Cluster;
  dataDir: string;
  /** Each API process's base URL. */
  urls: string[];
  /** The processes' last lines, for a failing drill's report. */
  lastLines: () => string;
}

async function startClusterTarget(): Promise<ClusterTarget> {
  const dataDir = tempDataDir('fees-chaos-cluster-');
  const env = { ...process.env, ...(await freeClusterPorts()), DATA_DIR: dataDir, DATABASE_URL: undefined, TEMPORAL_ADDRESS: undefined };
  const config = loadConfig(env);
  const lines: string[] = [];
  const cluster = await startCluster(config, {
    // The processes' lines, kept for a failing drill's report.
    output: (name, line) => {
      lines.push(`[${name}] ${line}`);
      if (lines.length > 20_000) lines.splice(0, 10_000);
    },
    log: () => undefined,
    // Temporal's own task timeouts (unlike the drills on one stack): a worker that starts under
    // load replays histories for seconds, and a 3 s task timeout turned that into repeated timeouts.
    env: {
      LOG_LEVEL: 'warn',
      BILL_RETRY_MAX_INTERVAL_MS: '1000',
      ...(quick ? { UPDATE_TIMEOUT_MS: '4000', BILL_ACTIVITY_TIMEOUT_MS: '5000' } : {}),
    },
  });
  const target: ClusterTarget = {
    cluster,
    dataDir,
    db: createPool(cluster.databaseUrl, 4),
    config,
    temporal: { address: cluster.temporalAddress },
    urls: cluster.apis.map((a) => a.url),
    lastLines: () => lines.slice(-200).join('\n'),
  };
  return target;
}

/**
 * The typed client as a load balancer in front of the API processes would serve it: each attempt
 * to the next API in turn, so a retry after a dead process's refused connection lands on the other
 * one, with the same idempotency key.
 */
function balancedClient(t: ClusterTarget, seen: Seen): FeesClient {
  let next = 0;
  return new FeesClient({
    baseUrl: t.urls[0],
    timeoutMs: RETRY_FOR_MS,
    retry: { maxAttempts: 10_000, initialDelayMs: 50, maxDelayMs: 2000 },
    fetch: async (input, init) => {
      const url = new URL(String(input));
      const base = new URL(t.urls[next++ % t.urls.length]);
      url.host = base.host;
      try {
        const res = await fetch(url, init);
        see(seen, String(res.status));
        return res;
      } catch (err) {
        see(seen, 'network');
        throw err;
      }
    },
  });
}

/** The longest wait between two acknowledgements from `from` on: how long the fault held writes up. */
function longestStall(times: number[], from: number): number {
  const after = [from, ...times.filter((t) => t >= from)].sort((a, b) => a - b);
  let longest = 0;
  for (let i = 1; i < after.length; i++) longest = Math.max(longest, after[i] - after[i - 1]);
  return longest;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Adds across both APIs while `fault` runs once a quarter of them is acknowledged; then the
 * invariants, and the longest stall of acknowledgements from the fault on (time to recover).
 */
async function clusterLoad(
  t: ClusterTarget,
  c: FeesClient,
  fault: () => Promise<string>,
): Promise<{ summary: string; problems: string[] }> {
  const { bills, adds, what, faultAt, ackTimes } = await underLoad(c, fault);
  // After the fault: every bill still takes an add (through whichever API answers).
  const later = await Promise.all(bills.map((b) => addOne(c, b, 7)));
  const problems = later.filter((a) => !a.acked).map((a) => `${a.bill}: an add after the fault was refused (${a.rejected})`);
  // A workflow that does not answer its query yet, or answers totals behind the stored ones (a
  // worker just restarted replays its history, then catches up), is checked again until it
  // agrees, for a minute; what is stored is checked as it is.
  const settled = Date.now();
  const catchingUp = (p: string) => p.endsWith(' workflow_unreachable') || p.endsWith(' live_vs_stored');
  let checked = await invariants(t, bills, [...adds, ...later]);
  while (checked.length > 0 && checked.every(catchingUp) && Date.now() - settled < 60_000) {
    await sleep(1000);
    checked = await invariants(t, bills, [...adds, ...later]);
  }
  const unreachableFor = Date.now() - settled;
  problems.push(...checked);
  // The ledger in the drill's terms (the invariants above name each exception).
  const acked = new Set([...adds, ...later].flatMap((a) => (a.acked ? [a.acked] : [])));
  const { rows } = await t.db.query<{ line_item_id: string }>('SELECT line_item_id FROM line_items WHERE bill_id = ANY($1)', [bills]);
  const stored = new Set(rows.map((r) => r.line_item_id));
  const lost = [...acked].filter((id) => !stored.has(id)).length;
  const extra = [...stored].filter((id) => !acked.has(id)).length;
  return {
    summary:
      `${SIZE.items} adds at concurrency ${SIZE.concurrency} over ${t.urls.length} APIs; ${what}; ${describeAdds(adds)}; ` +
      `${acked.size} acknowledged in all, ${rows.length} stored, ${rows.length - stored.size} doubled, ${lost} lost, ${extra} stored unacknowledged; ` +
      `longest stall of acknowledgements from the fault on ${seconds(longestStall(ackTimes, faultAt))}` +
      (unreachableFor >= 1000 ? `; every bill's workflow agreed with its stored totals ${seconds(unreachableFor)} after the load` : ''),
    problems,
  };
}

/** A process stopped (SIGTERM, drained) or killed, then started again and ready. */
async function restart(p: ServiceProcess, how: 'stop' | 'kill'): Promise<number> {
  const at = Date.now();
  if (how === 'kill') {
    p.kill();
    await p.exited();
  } else await p.stop();
  await p.start();
  await untilReady(p);
  return Date.now() - at;
}

const clusterDrills: Record<ClusterDrill, (t: ClusterTarget, c: FeesClient) => Promise<{ summary: string; problems: string[] }>> = {
  worker_kill: (t, c) =>
    clusterLoad(t, c, async () => {
      const [victim, other] = t.cluster.workers;
      victim.kill();
      await victim.exited();
      // The other carries the load alone for a while before the killed one comes back.
      await sleep(quick ? 3000 : 10_000);
      const alone = other.running();
      await victim.start();
      await untilReady(victim);
      return `${victim.name} SIGKILLed, ${other.name} ${alone ? 'carried on alone' : 'HAD EXITED'} for ${quick ? 3 : 10} s, then ${victim.name} started again`;
    }),

  temporal_kill: (t, c) =>
    clusterLoad(t, c, async () => {
      const at = Date.now();
      t.cluster.temporal.kill();
      await t.cluster.temporal.start();
      return `the Temporal server SIGKILLed and started again on its Postgres in ${seconds(Date.now() - at)}`;
    }),

  api_kill: (t, c) =>
    clusterLoad(t, c, async () => {
      const [victim] = t.cluster.apis;
      victim.kill();
      await victim.exited();
      await sleep(quick ? 3000 : 10_000);
      await victim.start();
      await untilReady(victim);
      return `${victim.name} SIGKILLed mid-request, clients retried on the other with the same keys, ${victim.name} back after ${quick ? 3 : 10} s`;
    }),

  postgres_restart: (t, c) =>
    clusterLoad(t, c, async () => {
      const at = Date.now();
      await t.cluster.postgres.stop();
      await sleep(SIZE.postgresDownMs);
      await t.cluster.postgres.start();
      return `our Postgres stopped for ${seconds(Date.now() - at)} and started again`;
    }),

  rolling_restart: (t, c) =>
    clusterLoad(t, c, async () => {
      const took: string[] = [];
      for (const w of t.cluster.workers) took.push(`${w.name} ${seconds(await restart(w, 'stop'))}`);
      return `both workers drained (SIGTERM) and started again one after the other (${took.join(', ')})`;
    }),
};

async function clusterMain(started: number): Promise<number> {
  const t = await startClusterTarget();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void t.cluster.stop().finally(() => process.exit(130)));
  console.log(
    `cluster up in ${seconds(Date.now() - started)}: the Temporal server at ${t.temporal.address} (${t.config.cluster.historyShards} shards), APIs ${t.urls.join(' ')}, ${t.cluster.workers.length} workers`,
  );
  let verdicts: Verdict[];
  try {
    verdicts = await runDrills(
      (drill, seen) => clusterDrills[drill as ClusterDrill](t, balancedClient(t, seen)),
      () => `\nthe cluster's last lines:\n${t.lastLines()}`,
    );
  } finally {
    await client?.connection.close();
    await t.db.end().catch(() => undefined);
    await t.cluster.stop();
    rmSync(t.dataDir, { recursive: true, force: true });
  }
  return report(verdicts);
}

/** Runs each drill in `only` against `target`, prints its verdict, and the table at the end. */
async function runDrills(
  run: (drill: string, seen: Seen) => Promise<{ summary: string; problems: string[] }>,
  outputOnFailure: () => string,
): Promise<Verdict[]> {
  const verdicts: Verdict[] = [];
  for (const drill of only) {
    const t = Date.now();
    const seen: Seen = new Map();
    let v: Verdict;
    try {
      const { summary, problems } = await run(drill, seen);
      v = {
        drill,
        ok: problems.length === 0,
        seconds: (Date.now() - t) / 1000,
        summary: `${summary}; client saw ${showSeen(seen)}`,
        problems,
      };
    } catch (err) {
      v = {
        drill,
        ok: false,
        seconds: (Date.now() - t) / 1000,
        summary: `aborted: ${(err as Error).message}`,
        problems: [String((err as Error).stack)],
      };
    }
    verdicts.push(v);
    console.log(`\n## ${drill}: ${v.ok ? 'PASS' : 'FAIL'} (${v.seconds.toFixed(1)} s)\n${v.summary}`);
    for (const p of v.problems.slice(0, 20)) console.log(`  - ${p}`);
  }
  if (verdicts.some((v) => !v.ok)) console.log(outputOnFailure());
  return verdicts;
}

function report(verdicts: Verdict[]): number {
  console.log(
    `\n| drill | verdict | seconds |\n|---|---|---|\n${verdicts.map((v) => `| ${v.drill} | ${v.ok ? 'PASS' : 'FAIL'} | ${v.seconds.toFixed(1)} |`).join('\n')}`,
  );
  const file = process.env.CHAOS_RESULTS;
  if (file) {
    writeFileSync(
      file,
      JSON.stringify({ quick, cluster: onCluster, cores: os.cpus().length, at: new Date().toISOString(), verdicts }, null, 2),
    );
  }
  return verdicts.every((v) => v.ok) ? 0 : 1;
}

async function main(): Promise<number> {
  const started = Date.now();
  console.log(
    `# Fees API fault drills${onCluster ? ' on the cluster' : ''}${quick ? ' (quick)' : ''}: ${os.cpus().length} cores, Node ${process.version}`,
  );
  if (onCluster) return clusterMain(started);
  const s = await startStack();
  // ^C stops the servers too (the drills' own processes die with us, see launch.ts).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stopStack(s).finally(() => process.exit(130)));
  console.log(
    `stack up in ${((Date.now() - started) / 1000).toFixed(1)} s: API ${s.url}, worker pid ${s.worker.pid}, Postgres ${s.postgres.dataDir}, Temporal ${s.temporal.address}`,
  );
  let verdicts: Verdict[];
  try {
    verdicts = await runDrills(
      (drill, seen) => drills[drill as Drill](s, clientFor(s, seen)),
      () => `\nAPI output:\n${s.api.output().slice(-4000)}\nworker output:\n${s.worker.output().slice(-4000)}`,
    );
  } finally {
    await client?.connection.close();
    await stopStack(s);
  }
  return report(verdicts);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
