/**
 * Records this release's workflow histories (tests/replay/fixtures.ts lists them) into
 * tests/replay/histories/<version>/, on a real stack: the test Postgres and a Temporal dev server of
 * its own. Run it once when a release is cut (docs/compatibility.md):
 * `npm run record-histories -- [--only a,b] [--force]`. Existing files are kept unless --force;
 * a released version's fixtures are never recorded again by later code.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import { billWorkflowId } from '../../bills/messages';
import { postProcessWorkflowId } from '../../invoices/messages';
import { deliveryWorkflowId } from '../../webhooks/messages';
import globalSetup from '../helpers/global-setup';
import globalTeardown from '../helpers/global-teardown';
import { freePort } from '../helpers/ports';
import { startSmtpPeer } from '../helpers/smtp';
import { call, eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';
import { startReceiver } from '../helpers/webhook-receiver';
import { RECORDED, RELEASE, fixturePath, type Recorded } from './fixtures';
import { historyToFile } from './history-file';

const { values: args } = parseArgs({ options: { force: { type: 'boolean', default: false }, only: { type: 'string' } } });
const only = args.only ? new Set(args.only.split(',')) : null;

const wanted = (name: Recorded) => (!only || only.has(name)) && (args.force || !existsSync(fixturePath(RELEASE, name)));

async function save(name: Recorded, handle: WorkflowHandle): Promise<void> {
  if (!wanted(name)) return;
  writeFileSync(fixturePath(RELEASE, name), historyToFile(await handle.fetchHistory()));
  console.log(`recorded ${RELEASE}/${name}`);
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
  Promise.all(items.map((i) => call(stack, 'POST', `/bills/${billId}/line-items`, i)));

const countOf = (bill: { totals: { line_item_count: number }[] }) => bill.totals.reduce((n, t) => n + t.line_item_count, 0);
const billOf = (stack: Stack, billId: string) => call(stack, 'GET', `/bills/${billId}`).then((r) => r.body);
const bill = (stack: Stack, billId: string, runId?: string) => stack.deps.temporal.workflow.getHandle(billWorkflowId(billId), runId);
const invoice = (stack: Stack, billId: string, runId?: string) =>
  stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId), runId);

function expectCount(b: { totals: { line_item_count: number }[] }, n: number): void {
  if (countOf(b) !== n) throw new Error(`expected ${n} line items, the bill counted ${countOf(b)}: ${JSON.stringify(b.totals)}`);
}

/** The stacks the scenarios run on: one bill per run, runs of three items, an SMTP server that is down. */
interface Stacks {
  main: Stack;
  shortRuns: Stack;
  mailDown: { stack: Stack; smtpPort: number };
}

const scenarios: { names: Recorded[]; run: (s: Stacks) => Promise<void> }[] = [
  {
    // Single, grouped and batched adds to a USD-only bill (one add of a group refused), a close on request.
    names: ['bill-closed-by-request'],
    async run({ main }) {
      const billId = uid();
      await ok(main, 'POST', '/bills', {
        bill_id: billId,
        billing_period_end: inSeconds(3600),
        currency: 'USD',
        customer_email: 'ap@example.com',
      });
      await ok(main, 'POST', `/bills/${billId}/line-items`, item(100));
      await together(main, billId, [item(1), item(2), item(3)]);
      const mixed = await together(main, billId, [item(4), item(5, 'EUR')]);
      if (mixed[0].status !== 200 || mixed[1].status !== 400) throw new Error(`mixed group: ${mixed.map((r) => r.status)}`);
      await ok(main, 'POST', `/bills/${billId}/line-items/batch`, { items: [item(6), item(7)] });
      expectCount((await ok(main, 'POST', `/bills/${billId}/close`)).bill, 7);
      await save('bill-closed-by-request', bill(main, billId));
    },
  },
  {
    // The durable timer closes the bill at the end of its period.
    names: ['bill-closed-by-timer'],
    async run({ main }) {
      const billId = uid();
      await ok(main, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3) });
      await ok(main, 'POST', `/bills/${billId}/line-items`, item(700, 'JPY'));
      await bill(main, billId).result();
      await save('bill-closed-by-timer', bill(main, billId));
    },
  },
  {
    // Runs of three items: grouped adds and a batch end the first run; the batch, resent after its
    // key's record expired, reaches the second and last run, whose write finds it applied; a close.
    names: ['bill-continued-as-new-first-run', 'bill-continued-as-new-last-run'],
    async run({ shortRuns: stack }) {
      const billId = uid();
      await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
      const first = await bill(stack, billId).describe();
      await together(stack, billId, [item(1), item(2)]);
      const batch = { items: [item(4), item(5, 'GEL')] };
      const sent = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, batch, { 'Idempotency-Key': 'resent' });
      await stack.db.query("DELETE FROM idempotency_keys WHERE key = 'resent'");
      const resent = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, batch, { 'Idempotency-Key': 'resent' });
      if (sent.status !== 200 || JSON.stringify(resent.body.line_item_ids) !== JSON.stringify(sent.body.line_item_ids)) {
        throw new Error(`resent batch: ${sent.status} ${resent.status} ${JSON.stringify(resent.body)}`);
      }
      const closed = (await ok(stack, 'POST', `/bills/${billId}/close`)).bill;
      expectCount(closed, 4);
      if (closed.version === 0 || (await bill(stack, billId).describe()).runId === first.runId) throw new Error('no continue-as-new');
      await save('bill-continued-as-new-first-run', bill(stack, billId, first.runId));
      await save('bill-continued-as-new-last-run', bill(stack, billId));
    },
  },
  {
    // A grace period: a draft at the period's end, a late add, finalized by its timer.
    names: ['bill-draft-finalized-by-timer'],
    async run({ main }) {
      const billId = uid();
      await ok(main, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(2), grace_period: 'PT3S' });
      await ok(main, 'POST', `/bills/${billId}/line-items`, item(100, 'EUR'));
      await eventually(async () => (await billOf(main, billId)).status === 'draft', 30_000);
      await ok(main, 'POST', `/bills/${billId}/line-items`, item(250, 'EUR'));
      await bill(main, billId).result();
      await save('bill-draft-finalized-by-timer', bill(main, billId));
    },
  },
  {
    // A draft finalized on request.
    names: ['bill-draft-finalized-on-request'],
    async run({ main }) {
      const billId = uid();
      await ok(main, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(1), grace_period: 'P1D' });
      await eventually(async () => (await billOf(main, billId)).status === 'draft', 30_000);
      await ok(main, 'POST', `/bills/${billId}/line-items`, item(300, 'EUR'));
      await ok(main, 'POST', `/bills/${billId}/finalize`);
      await bill(main, billId).result();
      await save('bill-draft-finalized-on-request', bill(main, billId));
    },
  },
  {
    // Updates refused: by the validator (a currency the bill does not take, a close of a recurring
    // bill), and by the ledger (an id already stored with other content: a key reused).
    names: ['bill-rejected-updates'],
    async run({ main }) {
      const billId = uid();
      await ok(main, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), currency: 'USD' });
      const key = { 'Idempotency-Key': `reused-${billId}` };
      if ((await call(main, 'POST', `/bills/${billId}/line-items`, item(100), key)).status !== 200) throw new Error('first add');
      if ((await call(main, 'POST', `/bills/${billId}/line-items`, item(5, 'EUR'))).status !== 400) throw new Error('EUR accepted');
      // The key's record gone, the same key with other content reaches the workflow and the ledger refuses it.
      await main.db.query('DELETE FROM idempotency_keys WHERE key = $1', [key['Idempotency-Key']]);
      if ((await call(main, 'POST', `/bills/${billId}/line-items`, item(999), key)).status !== 400) throw new Error('reused key accepted');
      expectCount((await ok(main, 'POST', `/bills/${billId}/close`)).bill, 1);
      await save('bill-rejected-updates', bill(main, billId));
    },
  },
  {
    // A line item stored behind the workflow's back: at close the ledger differs from the last snapshot, and the workflow reports it.
    names: ['bill-totals-mismatch'],
    async run({ main }) {
      const billId = uid();
      await ok(main, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
      await ok(main, 'POST', `/bills/${billId}/line-items`, item(100));
      await main.db.query(
        `INSERT INTO line_items (line_item_id, bill_id, amount, currency, description, source_ref)
         VALUES (gen_random_uuid(), $1, 5, 'USD', 'behind the workflow', 'fixture')`,
        [billId],
      );
      expectCount((await ok(main, 'POST', `/bills/${billId}/close`)).bill, 2);
      await save('bill-totals-mismatch', bill(main, billId));
    },
  },
  {
    // A recurring bill with a fee renews into the next period, whose series is cancelled and closed now.
    names: ['series-renewed', 'series-cancelled'],
    async run({ main }) {
      const billId = uid('series');
      await ok(main, 'POST', '/bills', { bill_id: billId, policy: 'recurring', interval: 'PT3S', recurring_fee: item(500) });
      await ok(main, 'POST', `/bills/${billId}/line-items`, item(10));
      await bill(main, billId).result();
      const next = await eventually(async () => (await billOf(main, billId)).next_bill_id as string | null);
      await ok(main, 'POST', `/bills/${next}/line-items`, item(20));
      await ok(main, 'POST', `/bills/${next}/cancel`, { close_now: true });
      await save('series-renewed', bill(main, billId));
      await save('series-cancelled', bill(main, next));
    },
  },
  {
    // An invoice delivered, overdue at a short due date, credited, paid in part, then in full: its lifecycle ends.
    names: ['invoice-paid'],
    async run({ main }) {
      const billId = uid();
      await ok(main, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), payment_terms: 'PT3S' });
      await ok(main, 'POST', `/bills/${billId}/line-items`, item(1000, 'EUR'));
      await ok(main, 'POST', `/bills/${billId}/close`);
      await eventually(async () => (await billOf(main, billId)).invoice?.payment_status === 'overdue', 30_000);
      await ok(main, 'POST', `/bills/${billId}/credit-notes`, { lines: [{ amount: 200, currency: 'EUR', reason: 'discount' }] });
      await ok(main, 'POST', `/bills/${billId}/invoice/payments`, { amount: 300, currency: 'EUR' });
      await ok(main, 'POST', `/bills/${billId}/invoice/payments`, { amount: 500, currency: 'EUR' });
      await invoice(main, billId).result();
      await save('invoice-paid', invoice(main, billId));
    },
  },
  {
    // Written off (the lifecycle ends), then voided: a new run of the lifecycle issues the void's credit note.
    names: ['invoice-voided'],
    async run({ main }) {
      const billId = uid();
      await ok(main, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
      await ok(main, 'POST', `/bills/${billId}/line-items`, item(700));
      await ok(main, 'POST', `/bills/${billId}/close`);
      await eventually(async () => (await billOf(main, billId)).invoice?.payment_status === 'open', 30_000);
      await ok(main, 'POST', `/bills/${billId}/invoice/mark-uncollectible`);
      await invoice(main, billId).result();
      await ok(main, 'POST', `/bills/${billId}/invoice/void`, { reason: 'written off' });
      await eventually(async () => (await invoice(main, billId).describe()).status.name === 'COMPLETED', 30_000);
      await save('invoice-voided', invoice(main, billId));
    },
  },
  {
    // The invoice's email fails (no SMTP server yet, one attempt): marked failed, its lifecycle goes
    // on. The SMTP server comes up and an operator retries: a new run delivers it; then it is paid.
    names: ['invoice-failed', 'invoice-retried'],
    async run({ mailDown: { stack, smtpPort } }) {
      const billId = uid();
      await ok(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), customer_email: 'ap@example.com' });
      await ok(stack, 'POST', `/bills/${billId}/line-items`, item(100));
      await ok(stack, 'POST', `/bills/${billId}/close`);
      await eventually(async () => (await billOf(stack, billId)).invoice?.status === 'failed', 60_000);
      const failed = await invoice(stack, billId).describe();
      const smtp = await startSmtpPeer(smtpPort);
      try {
        await ok(stack, 'POST', `/bills/${billId}/invoice/retry`);
        await eventually(async () => (await billOf(stack, billId)).invoice?.status === 'sent', 60_000);
        await ok(stack, 'POST', `/bills/${billId}/invoice/payments`, { amount: 100, currency: 'USD' });
        await invoice(stack, billId).result();
      } finally {
        await smtp.stop();
      }
      await save('invoice-failed', invoice(stack, billId, failed.runId));
      await save('invoice-retried', invoice(stack, billId));
    },
  },
  {
    // A webhook delivery answered 500 twice, then 200: two durable timers between three attempts.
    names: ['webhook-delivery-retried'],
    async run({ main }) {
      const receiver = await startReceiver();
      try {
        const hook = await ok(main, 'POST', '/webhooks', { url: receiver.url('/hook'), events: ['bill.created'] });
        receiver.route('/hook', [hook.secret], (n) => (n <= 2 ? 500 : 200));
        await ok(main, 'POST', '/bills', { bill_id: uid(), billing_period_end: inSeconds(3600) });
        await eventually(async () => receiver.at('/hook').some((r) => r.answered === 200), 30_000);
        const [delivery] = (await ok(main, 'GET', `/webhooks/${hook.webhook_id}/deliveries`)).deliveries;
        const handle = main.deps.temporal.workflow.getHandle(deliveryWorkflowId(delivery.delivery_id, 0));
        await handle.result();
        await save('webhook-delivery-retried', handle);
        await ok(main, 'DELETE', `/webhooks/${hook.webhook_id}`);
      } finally {
        await receiver.stop();
      }
    },
  },
];

async function main(): Promise<void> {
  const missing = RECORDED.filter((n) => !scenarios.some((s) => s.names.includes(n)));
  if (missing.length > 0) throw new Error(`no scenario records ${missing.join(', ')}`);
  mkdirSync(path.dirname(fixturePath(RELEASE, 'x')), { recursive: true });
  await globalSetup();
  const smtpPort = await freePort();
  const main = await startStack({ WEBHOOK_RETRY_INITIAL_MS: '200' });
  const shortRuns = await startStack({ BILL_CONTINUE_AS_NEW_AFTER: '3' });
  const mailDown = await startStack({
    SMTP_URL: `smtp://fees:test-secret@127.0.0.1:${smtpPort}`,
    POSTPROCESS_MAX_ATTEMPTS: '1',
    POSTPROCESS_RETRY_INITIAL_MS: '100',
    SMTP_TIMEOUT_MS: '2000',
  });
  try {
    const stacks = { main, shortRuns, mailDown: { stack: mailDown, smtpPort } };
    for (const s of scenarios) if (s.names.some(wanted)) await s.run(stacks);
  } finally {
    await Promise.all([main.stop(), shortRuns.stop(), mailDown.stop()]);
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
