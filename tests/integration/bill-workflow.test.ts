/**
 * The bill workflow's wiring with stubbed activities: the real workflow code on the run's Temporal
 * dev server (TestWorkflowEnvironment), an in-memory ledger instead of Postgres. What the handlers
 * hand to the ledger writer, what they answer from its snapshots, and what the close and a
 * continue-as-new do with them. (The rules themselves: tests/unit/bill-state.test.ts.)
 */
import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, Worker } from '@temporalio/worker';
import type { Activities } from '../../temporal/activities';
import type { TotalsByCurrency } from '../../core/money';
import {
  appendLineItemsUpdate,
  billWorkflowId,
  closeBillUpdate,
  getBillQuery,
  openBillUpdate,
  type BillWorkflowInput,
  type LedgerWrite,
  type WriteLineItemsInput,
  type WriteLineItemsResult,
} from '../../bills/messages';
import type { BillHeader } from '../../bills/types';
import { activitySettings, billHeader, lineItem } from '../helpers/bill-header';
import { sdkRunLogger } from '../helpers/run-logs';

/** The ledger as Postgres would keep it: each id stored once, a version per write. */
class FakeLedger {
  version = 0;
  totals: TotalsByCurrency = {};
  items = new Map<string, { amount: number; currency: string }>();
  writes: LedgerWrite[][] = [];
  closes = 0;
  mismatches: { live: TotalsByCurrency; stored: TotalsByCurrency }[] = [];
  /** Added to the stored totals at close: a write no snapshot brought back. */
  unseenAtClose: TotalsByCurrency = {};

  write({ writes }: WriteLineItemsInput): WriteLineItemsResult {
    this.writes.push(writes);
    const outcomes = writes.map((w) => {
      if (!('item' in w)) throw new Error('only single items in these tests');
      if (!this.items.has(w.item.line_item_id)) {
        this.items.set(w.item.line_item_id, w.item);
        const t = (this.totals[w.item.currency] ??= { amount: 0, count: 0 });
        t.amount += w.item.amount;
        t.count += 1;
      }
      return { status: 'stored' as const, created_at: '2026-12-01T00:00:00.000Z' };
    });
    this.version += 1;
    return { snapshot: { version: this.version, totals: structuredClone(this.totals) }, outcomes };
  }

  activities(): Partial<Activities> {
    return {
      persistBill: async () => 'created',
      writeLineItems: async (input) => this.write(input),
      closeBill: async (input) => {
        this.closes += 1;
        const totals = structuredClone(this.totals);
        for (const [c, t] of Object.entries(this.unseenAtClose)) {
          const e = (totals[c] ??= { amount: 0, count: 0 });
          e.amount += t.amount;
          e.count += t.count;
        }
        return { closed_at: input.closed_at, totals, version: this.version };
      },
      reportTotalsMismatch: async ({ live, stored }) => {
        this.mismatches.push({ live, stored });
      },
      // The invoice child: already sent, so it ends at once.
      postProcessSettings: async () => ({ activityTimeoutMs: 1000, retryInitialMs: 100, retryMaxIntervalMs: 100, maxAttempts: 1 }),
      beginPostProcess: async () => 'sent',
    };
  }
}

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  try {
    Runtime.install({ logger: sdkRunLogger() });
  } catch {
    // installed by an earlier test in this process
  }
  env = await TestWorkflowEnvironment.createFromExistingServer({ address: process.env.FEES_TEST_TEMPORAL_ADDRESS });
});

afterAll(async () => {
  await env?.teardown();
});

const header = (over: Partial<BillHeader> = {}) => billHeader({ bill_id: `wf-${randomUUID()}`, ...over });
const item = lineItem;

/** Runs `fn` with a worker on its own task queue whose activities are the fake ledger's. */
async function withWorker<T>(ledger: FakeLedger, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `wf-test-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { codePath: process.env.FEES_TEST_BUNDLE! },
    activities: ledger.activities(),
  });
  return worker.runUntil(fn(taskQueue));
}

async function openBill(taskQueue: string, input: BillWorkflowInput) {
  const startWorkflowOperation = new WithStartWorkflowOperation('billLifecycleWorkflow', {
    workflowId: billWorkflowId(input.bill.bill_id),
    taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'FAIL',
  });
  const live = await env.client.workflow.executeUpdateWithStart(openBillUpdate, { startWorkflowOperation });
  return { live, handle: await startWorkflowOperation.workflowHandle() };
}

it('answers each add of a group from the ledger snapshot, refusing only the item that does not fit', async () => {
  const ledger = new FakeLedger();
  await withWorker(ledger, async (taskQueue) => {
    const { live, handle } = await openBill(taskQueue, { bill: header({ currency: 'USD' }), activitySettings });
    expect(live).toMatchObject({ status: 'open', version: 0, line_item_count: 0 });

    const result = await handle.executeUpdate(appendLineItemsUpdate, {
      args: [{ items: [item('a', 100), item('b', 5, 'EUR'), item('c', 250)] }],
    });
    expect(result.results).toEqual([
      { created_at: '2026-12-01T00:00:00.000Z' },
      { refused: expect.objectContaining({ code: 'failed_precondition', message: 'this bill accepts only USD' }) },
      { created_at: '2026-12-01T00:00:00.000Z' },
    ]);
    expect(result).toMatchObject({ version: 1, totals: [{ currency: 'USD', amount: 350, line_item_count: 2 }] });
    // One group, one write: the refused item never reached the ledger.
    expect(ledger.writes).toEqual([[{ item: item('a', 100) }, { item: item('c', 250) }]]);

    // A resent item is stored once; the workflow adopts the ledger's count, never adds its own.
    await handle.executeUpdate(appendLineItemsUpdate, { args: [{ items: [item('a', 100)] }] });
    expect(await handle.query(getBillQuery)).toMatchObject({ version: 2, line_item_count: 2, totals: [{ amount: 350 }] });

    const closed = await handle.executeUpdate(closeBillUpdate, { args: [{}] });
    expect(closed).toMatchObject({ status: 'closed', line_item_count: 2 });
    expect(ledger.closes).toBe(1);
    expect(ledger.mismatches).toEqual([]);
    expect(await handle.result()).toMatchObject({ status: 'closed' });
  });
});

it('refuses a group whose items all fail the same rule, before it reaches the ledger', async () => {
  const ledger = new FakeLedger();
  await withWorker(ledger, async (taskQueue) => {
    const { handle } = await openBill(taskQueue, { bill: header({ currency: 'EUR' }), activitySettings });
    await expect(handle.executeUpdate(appendLineItemsUpdate, { args: [{ items: [item('a', 1, 'USD')] }] })).rejects.toMatchObject({
      cause: { type: 'failed_precondition', message: 'this bill accepts only EUR' },
    });
    expect(ledger.writes).toEqual([]);
    await handle.executeUpdate(closeBillUpdate, { args: [{}] });
  });
});

it('closes with the stored totals, and reports a difference from its own', async () => {
  const ledger = new FakeLedger();
  ledger.unseenAtClose = { USD: { amount: 7, count: 1 } };
  await withWorker(ledger, async (taskQueue) => {
    const { handle } = await openBill(taskQueue, { bill: header(), activitySettings });
    await handle.executeUpdate(appendLineItemsUpdate, { args: [{ items: [item('a', 10)] }] });
    const closed = await handle.executeUpdate(closeBillUpdate, { args: [{}] });
    expect(closed.totals).toMatchObject([{ currency: 'USD', amount: 17, line_item_count: 2 }]);
    expect(ledger.mismatches).toEqual([{ live: { USD: { amount: 10, count: 1 } }, stored: { USD: { amount: 17, count: 2 } } }]);
  });
});

it('continues as new after the configured number of items, carrying the ledger snapshot', async () => {
  const ledger = new FakeLedger();
  await withWorker(ledger, async (taskQueue) => {
    const { handle } = await openBill(taskQueue, { bill: header(), continueAsNewAfterItems: 2, activitySettings });
    await handle.executeUpdate(appendLineItemsUpdate, { args: [{ items: [item('a', 1), item('b', 2)] }] });
    // Adds during the drain are asked to retry; this one lands in the next run.
    let live;
    for (let attempt = 0; ; attempt++) {
      live = await handle.query(getBillQuery);
      if (live.continued_as_new === 1) break;
      if (attempt > 100) throw new Error('the run did not continue as new');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(live).toMatchObject({ status: 'open', version: 1, line_item_count: 2, totals: [{ amount: 3 }] });
    await handle.executeUpdate(appendLineItemsUpdate, { args: [{ items: [item('c', 4)] }] });
    expect(await handle.executeUpdate(closeBillUpdate, { args: [{}] })).toMatchObject({
      status: 'closed',
      version: 2,
      continued_as_new: 1,
      line_item_count: 3,
    });
  });
});

it('closes itself at the end of its period on a durable timer', async () => {
  const ledger = new FakeLedger();
  await withWorker(ledger, async (taskQueue) => {
    const bill = header({ billing_period_end: new Date(Date.now() + 1500).toISOString() });
    const { handle } = await openBill(taskQueue, { bill, activitySettings });
    await handle.executeUpdate(appendLineItemsUpdate, { args: [{ items: [item('a', 42)] }] });
    expect(await handle.result()).toMatchObject({ status: 'closed', line_item_count: 1, totals: [{ amount: 42 }] });
    expect(ledger.closes).toBe(1);
  });
});
