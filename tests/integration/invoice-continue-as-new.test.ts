/**
 * The invoice's lifecycle continues as new on the real stack. Its threshold (2,000 history events,
 * or Temporal's suggestion) is a constant of invoices/workflow.ts, not configuration. Driving it
 * with payments alone takes some 540 of them (46 s on a loaded 2-core machine), so the test fills
 * the first run's history with a signal the workflow has no handler for (Temporal records it, the
 * SDK buffers it, nothing else happens: production code unchanged), up to a little below the
 * threshold, and then lets payments from a few clients at once carry it over: they race the
 * continue-as-new, and more follow on the new run.
 */
import { suiteDataConverter } from '../helpers/encryption';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { postProcessWorkflowId } from '../../invoices/messages';
import { call, eventually, ledgerSums, startStack, uid, type Stack } from '../helpers/stack';
import { accountOf, eventCount, issuedBill } from '../helpers/invoices';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.stop();
});

/** What the lifecycle's run checks before each wait (invoices/workflow.ts, MAX_HISTORY_EVENTS). */
const HISTORY_LIMIT = 2_000;
/** Left for payments to fill: some tens of them, a few to a workflow task. */
const LEFT_FOR_PAYMENTS = 150;
const CLIENTS = 8;

async function pay(billId: string, amount: number) {
  const reply = await call(
    stack,
    'POST',
    `/bills/${billId}/invoice/payments`,
    { amount, currency: 'EUR' },
    { 'Idempotency-Key': uid('k') },
  );
  expect(reply.status).toBe(200);
  return reply;
}

/**
 * Signals the run with a name it has no handler for until its history is about `target` events
 * long. A signal adds at most four (itself, and a workflow task's three): never past the target.
 */
async function fillHistory(run: WorkflowHandle, target: number): Promise<void> {
  for (;;) {
    const left = target - (await run.describe()).historyLength;
    if (left < 4) return;
    await Promise.all(Array.from({ length: Math.min(50, Math.floor(left / 4)) }, () => run.signal('testHistoryFillerSignal')));
  }
}

describe("an invoice's lifecycle with a long history", () => {
  it('continues as new at 2,000 history events; payments racing it and after it apply once, the account adds up, reconciliation is clean', async () => {
    const billId = await issuedBill(stack, [[100_000, 'EUR']]);
    const lifecycle = stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId));
    const { runId: firstRunId } = await lifecycle.describe();
    const first = stack.deps.temporal.workflow.getHandle(lifecycle.workflowId, firstRunId);
    await fillHistory(first, HISTORY_LIMIT - LEFT_FOR_PAYMENTS);
    expect((await first.describe()).status.name).toBe('RUNNING');

    // Payments of one cent from a few clients at once, until the run has continued as new.
    const amounts: number[] = [];
    let continued = false;
    const watching = eventually(async () => (await lifecycle.describe()).runId !== firstRunId, 60_000).finally(() => {
      continued = true;
    });
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (!continued) {
          await pay(billId, 1);
          amounts.push(1);
        }
      }),
    );
    await watching;
    // And on the new run: a few more, then the rest.
    for (const amount of [100, 250]) {
      expect((await pay(billId, amount)).body.invoice.status).toBe('partially_paid');
      amounts.push(amount);
    }
    const rest = 100_000 - amounts.reduce((a, b) => a + b, 0);
    const last = await pay(billId, rest);
    amounts.push(rest);

    expect(last.body.invoice).toMatchObject({ status: 'paid', amounts: [{ currency: 'EUR', total: 100_000, paid: 100_000, due: 0 }] });
    expect((await first.describe()).status.name).toBe('CONTINUED_AS_NEW');
    const firstHistory = (await first.fetchHistory()).events ?? [];
    expect(firstHistory.length).toBeGreaterThanOrEqual(HISTORY_LIMIT);
    // At the limit, not long after it: only the changes in flight then are finished first.
    expect(firstHistory.length).toBeLessThan(HISTORY_LIMIT + 20 * CLIENTS);
    expect(await lifecycle.result()).toMatchObject({ payment_status: 'paid' });
    const nextHistory = (await lifecycle.fetchHistory()).events ?? [];
    expect(nextHistory[0].workflowExecutionStartedEventAttributes?.continuedExecutionRunId).toBe(firstRunId);

    // Every payment sent is recorded once, with its event; the account and the ledger agree.
    const account = await accountOf(stack, billId);
    expect(account.payments).toHaveLength(amounts.length);
    expect(account.payments.reduce((sum, p) => sum + p.amount, 0)).toBe(100_000);
    expect(account.invoice).toMatchObject({ status: 'paid', amounts: [{ currency: 'EUR', total: 100_000, credited: 0, paid: 100_000 }] });
    expect(await ledgerSums(stack, billId)).toEqual({ n: 1, total: '100000' });
    expect(await eventCount(stack, billId, 'invoice.payment_recorded')).toBe(amounts.length);
    expect(await eventCount(stack, billId, 'invoice.paid')).toBe(1);
    const reconciled = (await call(stack, 'GET', `/admin/reconcile?bill_id=${billId}`)).body;
    expect(reconciled).toMatchObject({ ok: true, invoices_checked: 1, invoice_differences: [] });
    // Both runs replay on today's code.
    const bundle = { workflowBundle: { codePath: process.env.FEES_TEST_BUNDLE! }, dataConverter: suiteDataConverter() };
    await Worker.runReplayHistory(bundle, { events: firstHistory }, lifecycle.workflowId);
    await Worker.runReplayHistory(bundle, { events: nextHistory }, lifecycle.workflowId);
  }, 120_000);
});
