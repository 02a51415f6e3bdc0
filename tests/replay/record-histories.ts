/**
 * Records the workflow histories that tests/replay/replay.test.ts replays on every run, so a
 * workflow change that would break bills already running fails CI. Run it when the workflows gain
 * behaviour worth covering (new fixtures are added; existing ones are kept, as running bills keep
 * their old histories): `npm run record-histories -- [--only a,b] [--force]`.
 *
 * Each scenario runs against a real stack (the test Postgres and a Temporal dev server of its own).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import globalSetup from '../helpers/global-setup';
import { historyToFile } from './history-file';
import globalTeardown from '../helpers/global-teardown';
import { call, eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';
import { testTempDir } from '../helpers/tmp';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { addLineItemUpdate, addLineItemsUpdate, billWorkflowId, openBillUpdate } from '../../bills/messages';
import { billHeader } from '../helpers/bill-header';
import { postProcessWorkflowId } from '../../invoices/messages';
import { deliveryWorkflowId } from '../../webhooks/messages';
import { startReceiver } from '../helpers/webhook-receiver';

/** The last release before ledger snapshots (migration 7): bills it started must keep working. */
const PREVIOUS_RELEASE = '9c99ff69e0b49fb3f857e3f4a5bb7ab9ef7a4660';
/** The last release before search attributes: its bills start without them. */
const BEFORE_SEARCH_ATTRIBUTES = 'dc4a07c316b178b7727cc902b956632a367fa46c';

export const FIXTURES_DIR = path.join(__dirname, 'histories');

// --only names the scenarios to run; with --force, only those are recorded again, so the histories
// of earlier releases (which this release's code must keep replaying) are never overwritten by it.
const { values: args } = parseArgs({ options: { force: { type: 'boolean', default: false }, only: { type: 'string' } } });
const only = args.only ? new Set(args.only.split(',')) : null;

async function save(name: string, handle: WorkflowHandle): Promise<void> {
  if (kept(name)) return;
  writeFileSync(path.join(FIXTURES_DIR, `${name}.json`), historyToFile(await handle.fetchHistory()));
  console.log(`recorded ${name}`);
}

const item = (amount: number, currency = 'USD') => ({ amount, currency, description: `item ${amount} ${currency}` });

async function ok(stack: Stack, method: string, p: string, body?: unknown): Promise<any> {
  // Money moves only under an idempotency key (payments, credit notes, void): every write sends one.
  const r = await call(stack, method, p, body, method === 'POST' ? { 'Idempotency-Key': randomUUID() } : {});
  if (r.status !== 200) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Adds sent at once, so the API groups them into one update. */
const together = (stack: Stack, billId: string, items: unknown[]) =>
  Promise.all(items.map((i) => ok(stack, 'POST', `/bills/${billId}/line-items`, i)));

/** The total line item count a bill answers with. */
const countOf = (bill: { totals: { line_item_count: number }[] }) => bill.totals.reduce((n, t) => n + t.line_item_count, 0);

const closed = (stack: Stack, billId: string) =>
  eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.status === 'closed', 30_000);

const scenarios: Record<string, (stack: Stack) => Promise<void>> = {
  /** A bill with a grace period: a draft at the period's end, a late add, finalized by its timer. */
  async 'draft-grace-period'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(2), grace_period: 'PT3S' });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(100, 'EUR'));
    await eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.status === 'draft', 30_000);
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(250, 'EUR'));
    await closed(stack, billId);
    const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(billId));
    await handle.result();
    await save('draft-grace-period', handle);
  },

  /** A draft finalized on request. */
  async 'draft-finalized'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(1), grace_period: 'P1D' });
    await eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.status === 'draft', 30_000);
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(300, 'EUR'));
    await ok(stack, 'POST', `/bills/${billId}/finalize`);
    const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(billId));
    await handle.result();
    await save('draft-finalized', handle);
  },

  /** An invoice's lifecycle: overdue at a short due date, a credit note, a partial payment, then paid. */
  async 'invoice-lifecycle-paid'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), payment_terms: 'PT3S' });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(1000, 'EUR'));
    await ok(stack, 'POST', `/bills/${billId}/close`);
    await eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.invoice?.payment_status === 'overdue', 30_000);
    await ok(stack, 'POST', `/bills/${billId}/credit-notes`, { lines: [{ amount: 200, currency: 'EUR', reason: 'discount' }] });
    await ok(stack, 'POST', `/bills/${billId}/invoice/payments`, { amount: 300, currency: 'EUR' });
    await ok(stack, 'POST', `/bills/${billId}/invoice/payments`, { amount: 500, currency: 'EUR' });
    const handle = stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId));
    await handle.result();
    await save('invoice-lifecycle-paid', handle);
  },

  /** A voided invoice, whose lifecycle had ended once written off and was started again by the void. */
  async 'invoice-lifecycle-voided'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(700, 'USD'));
    await ok(stack, 'POST', `/bills/${billId}/close`);
    await eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.invoice?.payment_status === 'open', 30_000);
    await ok(stack, 'POST', `/bills/${billId}/invoice/mark-uncollectible`);
    const handle = stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId));
    await handle.result();
    await ok(stack, 'POST', `/bills/${billId}/invoice/void`, { reason: 'written off' });
    await eventually(async () => (await handle.describe()).status.name === 'COMPLETED', 30_000);
    await save('invoice-lifecycle-voided', handle);
  },

  /** A webhook delivery answered 500 twice, then 200: two timers between three attempts. */
  async 'webhook-delivery-retried'(stack) {
    const receiver = await startReceiver();
    try {
      const hook = await ok(stack, 'POST', '/webhooks', { url: receiver.url('/hook'), events: ['bill.created'] });
      receiver.route('/hook', [hook.secret], (n) => (n <= 2 ? 500 : 200));
      await ok(stack, 'POST', '/bills', { bill_id: uid(), billing_period_end: inSeconds(3600) });
      await eventually(async () => receiver.at('/hook').some((r) => r.answered === 200), 30_000);
      const [delivery] = (await ok(stack, 'GET', `/webhooks/${hook.webhook_id}/deliveries`)).deliveries;
      const handle = stack.deps.temporal.workflow.getHandle(deliveryWorkflowId(delivery.delivery_id, 0));
      await handle.result();
      await save('webhook-delivery-retried', handle);
      await ok(stack, 'DELETE', `/webhooks/${hook.webhook_id}`);
    } finally {
      await receiver.stop();
    }
  },

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
    const added = await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), currency: 'USD' }).then(() =>
      ok(stack, 'POST', `/bills/${billId}/line-items`, item(100)),
    );
    const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(billId));
    const reused = { ...item(999), metadata: null, line_item_id: added.line_item.line_item_id };
    await handle.executeUpdate(addLineItemUpdate, { args: [reused], updateId: `${reused.line_item_id}-again` }).then(
      () => {
        throw new Error('expected a rejection');
      },
      () => undefined,
    );
    await handle.executeUpdate(addLineItemsUpdate, { args: [{ items: [reused] }], updateId: `${reused.line_item_id}-batch` }).then(
      () => {
        throw new Error('expected a rejection');
      },
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
    await recurringSeries(stack, 'recurring');
  },

  /**
   * Ledger snapshots (migration 7): adds grouped into one update, one of them refused inside its
   * group (a USD-only bill), a staged batch, an add resent after its key's record expired, the
   * previous release's single and batch updates sent to a bill of this release, then a close.
   */
  async 'ledger-adds'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), currency: 'USD' });
    await together(stack, billId, [item(1), item(2), item(3)]);
    const mixed = await Promise.all([item(4), item(5, 'EUR')].map((i) => call(stack, 'POST', `/bills/${billId}/line-items`, i)));
    if (mixed[0].status !== 200 || mixed[1].status !== 400) throw new Error(`mixed group: ${mixed.map((r) => r.status)}`);
    await ok(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: [item(6), item(7)] });
    await call(stack, 'POST', `/bills/${billId}/line-items`, item(8), { 'Idempotency-Key': 'resent' });
    await stack.db.query("DELETE FROM idempotency_keys WHERE key = 'resent'");
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(8));
    const resent = await call(stack, 'POST', `/bills/${billId}/line-items`, item(8), { 'Idempotency-Key': 'resent' });
    if (resent.status !== 200) throw new Error(`resent: ${resent.status}`);
    const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(billId));
    const legacy = { ...item(9), metadata: null, line_item_id: randomUUID() };
    await handle.executeUpdate(addLineItemUpdate, { args: [legacy], updateId: 'legacy-single' });
    await handle.executeUpdate(addLineItemsUpdate, {
      args: [{ items: [legacy, { ...legacy, line_item_id: randomUUID() }] }],
      updateId: 'legacy-batch',
    });
    const bill = (await ok(stack, 'POST', `/bills/${billId}/close`)).bill;
    if (countOf(bill) !== 10) throw new Error(`expected 10 line items, the bill counted ${countOf(bill)}`);
    await save('ledger-adds', handle);
  },

  /** Concurrent adds across runs (BILL_CONTINUE_AS_NEW_AFTER=3): the first run, and the last, which closes. */
  async 'ledger-continue-as-new'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const first = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).describe();
    await together(
      stack,
      billId,
      Array.from({ length: 8 }, (_, i) => item(i + 1)),
    );
    for (let i = 9; i <= 11; i++) await ok(stack, 'POST', `/bills/${billId}/line-items`, item(i));
    const bill = (await ok(stack, 'POST', `/bills/${billId}/close`)).bill;
    if (countOf(bill) !== 11) throw new Error(`expected 11 line items, the bill counted ${countOf(bill)}`);
    await save('ledger-continue-as-new-first-run', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId), first.runId));
    await save('ledger-continue-as-new-last-run', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
  },

  /** The same series, its fee written by the ledger writer. */
  async 'ledger-recurring'(stack) {
    await recurringSeries(stack, 'ledger-recurring');
  },

  /**
   * The same series once more, with the markers of history-cap (every run) and close-after-cancel
   * (the close waits for an accepted cancel's write to the bill row).
   */
  async 'series-close-after-cancel'(stack) {
    await recurringSeries(stack, 'series-close-after-cancel');
  },

  /** A row stored behind the workflow's back: the close reports the ledger's totals differ from the last snapshot. */
  async 'ledger-totals-mismatch'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3) });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(100));
    await stack.db.query(
      `INSERT INTO line_items (line_item_id, bill_id, amount, currency, description, source_ref)
       VALUES (gen_random_uuid(), $1, 5, 'USD', 'behind the workflow', 'fixture')`,
      [billId],
    );
    await closed(stack, billId);
    await save('ledger-totals-mismatch', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
  },

  /**
   * A bill started by the previous release (its workflow code, built from that commit) that this
   * release's worker takes over half-way: adds on both sides of the upgrade, then a close. The
   * totals must come out exact, and the history must replay with this release's code.
   */
  async 'upgrade-mid-bill'(stack) {
    if (kept('upgrade-mid-bill')) return;
    const billId = uid();
    await onPreviousRelease(stack, PREVIOUS_RELEASE, async () => {
      await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
      const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(billId));
      // The previous release's API sent one update per add.
      await handle.executeUpdate(addLineItemUpdate, {
        args: [{ ...item(100), metadata: null, line_item_id: randomUUID() }],
        updateId: 'before-1',
      });
      await ok(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: [item(1), item(2)] });
    });
    await together(stack, billId, [item(10), item(20)]);
    await ok(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: [item(3)] });
    const bill = (await ok(stack, 'POST', `/bills/${billId}/close`)).bill;
    const sum = bill.totals.reduce((n: number, t: { amount: number }) => n + t.amount, 0);
    if (countOf(bill) !== 6 || sum !== 136) throw new Error(`expected 6 items summing to 136, got ${JSON.stringify(bill.totals)}`);
    await save('upgrade-mid-bill', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
  },

  /**
   * Search attributes: set at the start, kept current as currencies join and the bill closes; the
   * invoice starts with its own and follows its status.
   */
  async 'search-attributes'(stack) {
    const billId = uid();
    await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), customer_email: 'ops@example.com' });
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(100));
    await together(stack, billId, [item(5, 'EUR'), item(7, 'GBP')]);
    await ok(stack, 'POST', `/bills/${billId}/line-items`, item(9, 'EUR'));
    await ok(stack, 'POST', `/bills/${billId}/close`);
    await save('search-attributes-close', stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
    const postProcess = stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId));
    await postProcess.result();
    await save('search-attributes-invoice', postProcess);
  },

  /** A series with search attributes: the next period's bill starts with its own. */
  async 'search-attributes-series'(stack) {
    await recurringSeries(stack, 'search-attributes-series');
  },

  /**
   * A bill started as the release before search attributes started them (none at its start), run by
   * that release's workflow code, then taken over by this one: it gets the full set with its first
   * upsert, and closes.
   */
  async 'search-attributes-upgrade'(stack) {
    if (kept('search-attributes-upgrade')) return;
    const bill = billHeader({ bill_id: uid(), customer_email: 'upgrade@example.com' });
    await onPreviousRelease(stack, BEFORE_SEARCH_ATTRIBUTES, async () => {
      const startWorkflowOperation = new WithStartWorkflowOperation('billLifecycleWorkflow', {
        workflowId: billWorkflowId(bill.bill_id),
        taskQueue: stack.config.temporal.taskQueue,
        args: [{ bill, activitySettings: stack.config.billActivities }],
        workflowIdConflictPolicy: 'FAIL',
      });
      await stack.deps.temporal.workflow.executeUpdateWithStart(openBillUpdate, { startWorkflowOperation });
      await ok(stack, 'POST', `/bills/${bill.bill_id}/line-items`, item(100));
    });
    await ok(stack, 'POST', `/bills/${bill.bill_id}/line-items`, item(5, 'EUR'));
    const closedBill = (await ok(stack, 'POST', `/bills/${bill.bill_id}/close`)).bill;
    if (countOf(closedBill) !== 2) throw new Error(`expected 2 line items, got ${JSON.stringify(closedBill.totals)}`);
    const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(bill.bill_id));
    const shown = (await handle.describe()).searchAttributes;
    if (!shown.BillStatus || !shown.BillCustomer) throw new Error(`search attributes missing after the upgrade: ${JSON.stringify(shown)}`);
    await save('search-attributes-upgrade', handle);
  },

  /** A failed invoice with search attributes: its status ends as failed. */
  async 'search-attributes-invoice-failed'(stack) {
    await failedInvoice(stack, 'search-attributes-invoice-failed');
  },

  /** The invoice cannot be delivered (no SMTP server) and its workflow fails after one attempt. */
  async 'post-process-failed'(stack) {
    await failedInvoice(stack, 'post-process-failed');
  },
};

/** True (and says so) when the fixture exists and --force does not ask for it again. */
function kept(name: string): boolean {
  if (!existsSync(path.join(FIXTURES_DIR, `${name}.json`)) || args.force) return false;
  console.log(`kept     ${name} (exists; --force records it again)`);
  return true;
}

/**
 * Runs `fn` with the stack's worker on the workflow code of a previous release (built from its
 * commit), then puts this release's worker back: what `fn` started, this release takes over.
 */
async function onPreviousRelease(stack: Stack, commit: string, fn: () => Promise<void>): Promise<void> {
  const previous = await previousReleaseBundle(commit);
  const current = process.env.FEES_TEST_BUNDLE;
  await stack.stopWorker();
  process.env.FEES_TEST_BUNDLE = previous;
  try {
    await stack.startWorker();
    await fn();
    await stack.stopWorker();
  } finally {
    process.env.FEES_TEST_BUNDLE = current;
  }
  await stack.startWorker();
}

/** A bill closed at once whose invoice fails (on the stack whose SMTP server is missing). */
async function failedInvoice(stack: Stack, name: string): Promise<void> {
  const billId = uid();
  await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), customer_email: 'ap@example.com' });
  await ok(stack, 'POST', `/bills/${billId}/line-items`, item(100));
  await ok(stack, 'POST', `/bills/${billId}/close`);
  const handle = stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId));
  await handle.result().catch(() => undefined);
  await save(name, handle);
}

/** A previous release's workflow bundle, built from its commit in a temporary worktree. */
async function previousReleaseBundle(commit: string): Promise<string> {
  const root = path.resolve(__dirname, '..', '..');
  const dir = path.join(testTempDir('previous-release-'), 'tree');
  execFileSync('git', ['worktree', 'add', '--detach', dir, commit], { cwd: root, stdio: 'ignore' });
  try {
    symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    // The bundle's entry point moved with the structure change (temporal/workflows.ts).
    const entry = ['temporal/workflows.ts', 'temporal/workflows/index.ts'].map((f) => path.join(dir, f)).find((f) => existsSync(f))!;
    const { code } = await bundleWorkflowCode({ workflowsPath: entry });
    const bundle = path.join(path.dirname(dir), 'previous-bundle.js');
    writeFileSync(bundle, code);
    return bundle;
  } finally {
    execFileSync('git', ['worktree', 'remove', '--force', dir], { cwd: root, stdio: 'ignore' });
  }
}

/** A recurring bill with a fee, renewed once; the next one cancelled and closed now. Saved as `${name}-renewed|cancelled`. */
async function recurringSeries(stack: Stack, name: string): Promise<void> {
  const billId = uid('series');
  await ok(stack, 'POST', '/bills', { bill_id: billId, policy: 'recurring', interval: 'PT3S', recurring_fee: item(500) });
  await ok(stack, 'POST', `/bills/${billId}/line-items`, item(10));
  await closed(stack, billId);
  const next = await eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.next_bill_id as string | null);
  await ok(stack, 'POST', `/bills/${next}/line-items`, item(20));
  await ok(stack, 'POST', `/bills/${next}/cancel`, { close_now: true });
  await save(`${name}-renewed`, stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)));
  await save(`${name}-cancelled`, stack.deps.temporal.workflow.getHandle(billWorkflowId(next)));
}

const ONE_RUN = new Set([
  'draft-grace-period',
  'draft-finalized',
  'ledger-adds',
  'ledger-recurring',
  'ledger-totals-mismatch',
  'upgrade-mid-bill',
  'series-close-after-cancel',
  'search-attributes',
  'search-attributes-series',
  'search-attributes-upgrade',
]);
const FAILING = new Set(['post-process-failed', 'search-attributes-invoice-failed']);

async function main(): Promise<void> {
  mkdirSync(FIXTURES_DIR, { recursive: true });
  await globalSetup();
  try {
    const stack = await startStack({ BILL_CONTINUE_AS_NEW_AFTER: '3', WEBHOOK_RETRY_INITIAL_MS: '200' });
    // One run per bill, so its history holds all of it (an upgrade half-way, every kind of add).
    const oneRun = await startStack();
    // Delivery to a port nobody listens on, one attempt: the failed post-process.
    const failing = await startStack({ SMTP_URL: 'smtp://127.0.0.1:9', POSTPROCESS_MAX_ATTEMPTS: '1' });
    const stackFor = (name: string) => (FAILING.has(name) ? failing : ONE_RUN.has(name) ? oneRun : stack);
    try {
      for (const [name, run] of Object.entries(scenarios)) if (!only || only.has(name)) await run(stackFor(name));
    } finally {
      await stack.stop();
      await oneRun.stop();
      await failing.stop();
    }
  } finally {
    await globalTeardown();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
