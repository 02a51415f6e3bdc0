/**
 * Fault drills: real load against the real stack on loopback (its own embedded Postgres and
 * Temporal dev server, the API and the worker as separate processes), one fault per drill, then
 * the invariants: every acknowledged line item stored exactly once, nothing else stored, and per
 * bill the workflow's totals, the stored totals and the sum of the line items agree
 * (reconciliation). Each drill prints what it did and its verdict; the exit code is 1 if one fails.
 *
 *   npm run chaos -- [--quick] [--only worker_kill,api_kill,temporal_restart,postgres_outage,close_races]
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { reconcile } from '../bills/reconcile';
import { FeesApiError, FeesClient } from '../client';
import { createPool, type Db } from '../core/db';
import { startEmbeddedPostgres } from '../host/postgres';
import { startTemporalDevServer } from '../host/temporal-dev';
import { connectClient } from '../core/temporal';
import { sleep, spawnHost, startSplitStack, stopSplitStack, type SplitStack } from './launch';

const DRILLS = ['worker_kill', 'api_kill', 'temporal_restart', 'postgres_outage', 'close_races'] as const;
type Drill = (typeof DRILLS)[number];

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
const quick = args.quick!;
const only = args.only ? args.only.split(',') : [...DRILLS];
for (const d of only) if (!DRILLS.includes(d as Drill)) throw new Error(`unknown drill ${d}; drills: ${DRILLS.join(', ')}`);

const SIZE = {
  items: quick ? 200 : 1000,
  concurrency: 16,
  bills: quick ? 5 : 20,
  postgresDownMs: quick ? 4000 : 10_000,
  raceRounds: quick ? 5 : 20,
  raceAdds: 20,
};
/** A client keeps retrying an unacknowledged request this long (same idempotency key). */
const RETRY_FOR_MS = 180_000;

// ---------------------------------------------------------------------------------------------
// The stack, every part of which a drill can stop

interface Stack extends SplitStack {
  db: Db;
}

async function startStack(): Promise<Stack> {
  const stack = await startSplitStack('fees-chaos-', {
    // Activities retry a failing database every second at most, so recovery shows within the drill.
    BILL_RETRY_MAX_INTERVAL_MS: '1000',
    // Quick: updates with no worker to take them give up sooner (and idempotency keys held by a
    // killed API free up sooner, at twice that), so the client's retries come round faster.
    // Activities lost with a killed worker are retried after their timeout (BILL_ACTIVITY_TIMEOUT_MS).
    ...(quick ? { UPDATE_TIMEOUT_MS: '4000', BILL_ACTIVITY_TIMEOUT_MS: '5000' } : {}),
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

/** One answer, no retry (the reads during an outage). */
async function request(url: string, method: string, p: string): Promise<Reply> {
  const res = await fetch(url + p, { method, signal: AbortSignal.timeout(30_000) });
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
function addMany(c: FeesClient, bills: string[], n: number, progress: { acked: number }): Promise<Add[]> {
  const adds: Add[] = [];
  let next = 0;
  return Promise.all(
    Array.from({ length: SIZE.concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const add = await addOne(c, bills[i % bills.length], 1 + Math.floor(Math.random() * 1000));
        if (add.acked) progress.acked++;
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

// ---------------------------------------------------------------------------------------------
// The invariants

/**
 * What is wrong with these bills, if anything: [] when every invariant holds. Only a close race
 * may refuse an add (as `failed_precondition`); any refusal elsewhere is a problem.
 */
async function invariants(s: Stack, bills: string[], adds: Add[], closing = false): Promise<string[]> {
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
async function temporalClient(s: Stack) {
  client ??= await connectClient(s.config, s.temporal.address);
  return client;
}

// ---------------------------------------------------------------------------------------------
// The drills

interface Verdict {
  drill: Drill;
  ok: boolean;
  seconds: number;
  summary: string;
  problems: string[];
}

const describeAdds = (adds: Add[]) =>
  `${adds.filter((a) => a.acked).length} acknowledged, ${adds.filter((a) => a.rejected).length} rejected`;

/** Adds under load while `fault` runs once a quarter of them is acknowledged. */
async function underLoad(s: Stack, c: FeesClient, fault: () => Promise<string>): Promise<{ bills: string[]; adds: Add[]; what: string }> {
  const bills = await createBills(c, SIZE.bills);
  const progress = { acked: 0 };
  const load = addMany(c, bills, SIZE.items, progress);
  await until('a quarter of the adds', () => progress.acked >= SIZE.items / 4);
  const what = await fault();
  return { bills, adds: await load, what };
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
    const { bills, adds, what } = await underLoad(s, c, () => killAndRestart(s, 'worker'));
    return {
      summary: `${SIZE.items} adds at concurrency ${SIZE.concurrency}; ${what}; ${describeAdds(adds)}`,
      problems: await invariants(s, bills, adds),
    };
  },

  async api_kill(s, c) {
    const { bills, adds, what } = await underLoad(s, c, () => killAndRestart(s, 'api'));
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
    const { bills, adds, what } = await underLoad(s, c, async () => {
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
    const { bills, adds, what } = await underLoad(s, c, async () => {
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
};

async function main(): Promise<number> {
  const started = Date.now();
  console.log(`# Fees API fault drills${quick ? ' (quick)' : ''}: ${os.cpus().length} cores, Node ${process.version}`);
  const s = await startStack();
  // ^C stops the servers too (the drills' own processes die with us, see launch.ts).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stopStack(s).finally(() => process.exit(130)));
  console.log(
    `stack up in ${((Date.now() - started) / 1000).toFixed(1)} s: API ${s.url}, worker pid ${s.worker.pid}, Postgres ${s.postgres.dataDir}, Temporal ${s.temporal.address}`,
  );
  const verdicts: Verdict[] = [];
  try {
    for (const drill of only as Drill[]) {
      const t = Date.now();
      const seen: Seen = new Map();
      let v: Verdict;
      try {
        const { summary, problems } = await drills[drill](s, clientFor(s, seen));
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
  } finally {
    await client?.connection.close();
    if (verdicts.some((v) => !v.ok))
      console.log(`\nAPI output:\n${s.api.output().slice(-4000)}\nworker output:\n${s.worker.output().slice(-4000)}`);
    await stopStack(s);
  }
  console.log(
    `\n| drill | verdict | seconds |\n|---|---|---|\n${verdicts.map((v) => `| ${v.drill} | ${v.ok ? 'PASS' : 'FAIL'} | ${v.seconds.toFixed(1)} |`).join('\n')}`,
  );
  const file = process.env.CHAOS_RESULTS;
  if (file) writeFileSync(file, JSON.stringify({ quick, cores: os.cpus().length, at: new Date().toISOString(), verdicts }, null, 2));
  return verdicts.every((v) => v.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
