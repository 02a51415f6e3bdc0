/**
 * Records the workflow histories that tests/replay/replay.test.ts replays on every run, so a
 * workflow change that would break bills already running fails CI. Run it when the workflows gain
 * behaviour worth covering (new fixtures are added; existing ones are kept, as running bills keep
 * their old histories): `npm run record-histories [-- --force]`.
 *
 * Each scenario runs against a real stack (the test Postgres and a Temporal dev server of its own).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import globalSetup from '../helpers/global-setup';
import { historyToFile } from './history-file';
import globalTeardown from '../helpers/global-teardown';
import { call, eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';
import { addLineItemUpdate, addLineItemsUpdate, billWorkflowId, postProcessWorkflowId } from '../../temporal/shared';

export const FIXTURES_DIR = path.join(__dirname, 'histories');

const { values: args } = parseArgs({ options: { force: { type: 'boolean', default: false } } });

async function save(name: string, handle: WorkflowHandle): Promise<void> {
  const file = path.join(FIXTURES_DIR, `${name}.json`);
  if (existsSync(file) && !args.force) {
    console.log(`kept     ${name} (exists; --force records it again)`);
    return;
  }
  writeFileSync(file, historyToFile(await handle.fetchHistory()));
  console.log(`recorded ${name}`);
}

const item = (amount: number, currency = 'USD') => ({ amount, currency, description: `item ${amount} ${currency}` });

async function ok(stack: Stack, method: string, p: string, body?: unknown): Promise<any> {
  const r = await call(stack, method, p, body);
  if (r.status !== 200) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const closed = (stack: Stack, billId: string) =>
  eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.status === 'closed', 30_000);

const scenarios: Record<string, (stack: Stack) => Promise<void>> = {
  /** Items in two currencies, an idempotent retry, a batch, then a close on request; and its invoice. */
  async 'close-by-request'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), customer_email: 'ap@example.com' });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(100));
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(250, 'EUR'));
    await ok(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: [item(1), item(2), item(3, 'EUR')] });
    await ok(stack, 'POST', `/bills/${billId}/close`);
    const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(billId));
    await save('close-by-request', handle);
    const postProcess = stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId));
    await postProcess.result();
    await save('post-process-delivered', postProcess);
  },

  /**
   * Batches through the claim check (staged items, a reference in the update). The second one ends
   * the first run (BILL_CONTINUE_AS_NEW_AFTER=3); resent after its key's record expired, it reaches
   * the next run, whose activity finds it applied by the first and counts nothing. Then a close.
   * close-by-request.json keeps the batch update of the previous release.
   */
  async 'staged-batches'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const first = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).describe();
    await ok(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: [item(1), item(2, 'EUR')] });
    const again = { items: [item(4), item(5, 'GEL')] };
    const sent = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, again, { 'Idempotency-Key': 'staged-again' });
    // The key's record expired: the resent request reaches the workflow again.
    await stack.db.query("DELETE FROM idempotency_keys WHERE key LIKE '%staged-again'");
    const resent = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, again, { 'Idempotency-Key': 'staged-again' });
    if (sent.status !== 200 || JSON.stringify(resent.body.line_item_ids) !== JSON.stringify(sent.body.line_item_ids)) {
      throw new Error(`resent batch: ${sent.status} ${resent.status} ${JSON.stringify(resent.body)}`);
    }
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(6));
    const closedBill = await ok(stack, 'POST', `/bills/${billId}/close`);
    const count = closedBill.bill.totals.reduce((n: number, t: { line_item_count: number }) => n + t.line_item_count, 0);
    if (count !== 5) throw new Error(`expected 5 line items, the bill counted ${count}`);
    await save('staged-batches-first-run', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId), first.runId));
    await save('staged-batches-last-run', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
  },

  /** The durable timer closes the bill at the end of its period. */
  async 'close-by-timer'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3) });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(700, 'JPY'));
    await closed(stack, billId);
    await save('close-by-timer', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
  },

  /** Updates the workflow accepts and then rejects (an id reused for other data, single and batch). */
  async 'rejected-updates'(stack) {
    const billId = uid();
    const added = await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), currency: 'USD' })
      .then(() => ok(stack, 'POST', `/bills/${billId}/line-items`, item(100)));
    const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(billId));
    const reused = { ...item(999), metadata: null, line_item_id: added.line_item.line_item_id };
    await handle.executeUpdate(addLineItemUpdate, { args: [reused], updateId: `${reused.line_item_id}-again` }).then(
      () => { throw new Error('expected a rejection'); },
      () => undefined,
    );
    await handle.executeUpdate(addLineItemsUpdate, { args: [{ items: [reused] }], updateId: `${reused.line_item_id}-batch` }).then(
      () => { throw new Error('expected a rejection'); },
      () => undefined,
    );
    await ok(stack, 'POST', `/bills/${billId}/close`);
    await save('rejected-updates', handle);
  },

  /** Three items per run (BILL_CONTINUE_AS_NEW_AFTER=3): the first run, and the last, which closes. */
  async 'continue-as-new'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const first = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).describe();
    for (let i = 1; i <= 7; i++) await ok(stack, 'POST', `/bills/${billId}/line-items`, item(i * 10));
    await ok(stack, 'POST', `/bills/${billId}/close`);
    await save('continue-as-new-first-run', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId), first.runId));
    await save('continue-as-new-last-run', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
  },

  /**
   * A line item stored behind the workflow's back: at close, live and stored totals differ, and
   * the workflow reports it (patch REPORT_TOTALS_MISMATCH). totals-mismatch-at-close.json is the
   * same scenario recorded before that patch, kept so that both branches stay replayable.
   */
  async 'totals-mismatch-reported'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(100));
    await stack.db.query(
      `INSERT INTO line_items (line_item_id, bill_id, amount, currency, description, source_ref)
       VALUES (gen_random_uuid(), $1, 5, 'USD', 'behind the workflow', 'fixture')`,
      [billId],
    );
    await ok(stack, 'POST', `/bills/${billId}/close`);
    await save('totals-mismatch-reported', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
  },

  /** A recurring bill with a fee: its first period renews into the next, which is cancelled and closed now. */
  async 'recurring-series'(stack) {
    const billId = uid('series');
    await ok(stack, 'POST', '/bills', { bill_id: billId, policy: 'recurring', interval: 'PT3S', recurring_fee: item(500) });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(10));
    await closed(stack, billId);
    const next = await eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.next_bill_id as string | null);
    await ok(stack, 'POST', `/bills/${next}/line-items`, item(20));
    await ok(stack, 'POST', `/bills/${next}/cancel`, { close_now: true });
    await save('recurring-renewed', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
    await save('recurring-cancelled', stack.deps.temporal.workflow.getHandle(billWorkflowId(next)));
  },

  /** The invoice cannot be delivered (no SMTP server) and its workflow fails after one attempt. */
  async 'post-process-failed'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), customer_email: 'ap@example.com' });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(100));
    await ok(stack, 'POST', `/bills/${billId}/close`);
    const handle = stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId));
    await handle.result().catch(() => undefined);
    await save('post-process-failed', handle);
  },
};

async function main(): Promise<void> {
  mkdirSync(FIXTURES_DIR, { recursive: true });
  await globalSetup();
  try {
    const stack = await startStack({ BILL_CONTINUE_AS_NEW_AFTER: '3' });
    // Delivery to a port nobody listens on, one attempt: the failed post-process.
    const failing = await startStack({ SMTP_URL: 'smtp://127.0.0.1:9', POSTPROCESS_MAX_ATTEMPTS: '1' });
    try {
      for (const [name, run] of Object.entries(scenarios)) await run(name === 'post-process-failed' ? failing : stack);
    } finally {
      await stack.stop();
      await failing.stop();
    }
  } finally {
    await globalTeardown();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
