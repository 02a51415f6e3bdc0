/**
 * The due date on the real stack: `due_at` is the finalization plus the bill's payment terms;
 * with terms of seconds, an invoice paid before it never becomes overdue, and a due timer that
 * fires while no worker runs makes the invoice overdue, once, when a worker is back. Apart from
 * invoice-lifecycle.test.ts, beside which it runs, because it waits for due dates to pass.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { postProcessWorkflowId } from '../../invoices/messages';
import { KILLED_WORKER_ENV, call, eventually, startCrashingWorker, startStack, uid, type Stack } from '../helpers/stack';
import { accountOf, eventCount, invoiceWhen, issuedBill, storedInvoice } from '../helpers/invoices';

let stack: Stack;

beforeAll(async () => {
  // A worker of this file is killed: its workflows move to another worker within seconds.
  stack = await startStack({ ...KILLED_WORKER_ENV });
});
afterAll(async () => {
  await stack.stop();
});

const key = () => ({ 'Idempotency-Key': uid('k') });

/** A closed bill of 700 EUR with these payment terms, its invoice issued (no email: skipped). */
const closedBill = (paymentTerms: string) => issuedBill(stack, [[700, 'EUR']], { payment_terms: paymentTerms });

/** The kinds of events in the lifecycle's history, in order. */
async function historyOf(handle: WorkflowHandle): Promise<string[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? []).map((e) => Object.keys(e).find((k) => k.endsWith('EventAttributes') && e[k as keyof typeof e] != null) ?? '');
}

describe('due_at', () => {
  it.each([
    ['P14D', 14 * 86_400_000],
    ['PT36H', 36 * 3_600_000],
  ])("is the finalization time plus the bill's payment terms (%s), to the millisecond", async (terms, ms) => {
    const billId = await closedBill(terms);

    const bill = (await call(stack, 'GET', `/bills/${billId}`)).body;
    const { invoice: account } = await accountOf(stack, billId);
    const stored = await storedInvoice(stack, billId);

    expect(bill.payment_terms).toBe(terms);
    expect(account.payment_terms).toBe(terms);
    // Finalized when numbered, which comes after the close: the two differ, so a due date counted
    // from the close would show here.
    expect(account.finalized_at).toBe(stored!.issued_at.toISOString());
    expect(Date.parse(account.finalized_at)).toBeGreaterThan(Date.parse(bill.closed_at));
    expect(Date.parse(account.due_at) - Date.parse(account.finalized_at)).toBe(ms);
    expect(bill.invoice.due_at).toBe(account.due_at);
  });
});

describe('an invoice paid before its due date', () => {
  it('never becomes overdue, and no invoice.overdue is written, once the due date has passed', async () => {
    const paidBill = await closedBill('PT3S');
    const payment = await call(stack, 'POST', `/bills/${paidBill}/invoice/payments`, { amount: 700, currency: 'EUR' }, key());
    expect(payment.body.invoice).toMatchObject({ status: 'paid', overdue_at: null });
    // Paid before the due date, or this test would prove nothing.
    expect(Date.parse(payment.body.payment.recorded_at)).toBeLessThan(Date.parse(payment.body.invoice.due_at));

    // A twin with the same terms, issued after the payment and left unpaid: once it is overdue, the
    // paid invoice's due date has passed too, and its due timer would have fired.
    const unpaidBill = await closedBill('PT3S');
    const twin = await invoiceWhen(stack, unpaidBill, (i) => i.payment_status === 'overdue', 20_000);
    expect(Date.parse(twin.due_at!)).toBeGreaterThan(Date.parse(payment.body.invoice.due_at));

    const { invoice } = await accountOf(stack, paidBill);
    expect(invoice).toMatchObject({ status: 'paid', overdue_at: null });
    expect(await eventCount(stack, paidBill, 'invoice.overdue')).toBe(0);
    expect(await eventCount(stack, paidBill, 'invoice.paid')).toBe(1);
    expect(await eventCount(stack, unpaidBill, 'invoice.overdue')).toBe(1);
  });
});

describe('a due date that passes while no worker runs', () => {
  it('makes the invoice overdue, with one invoice.overdue, once a worker is back', async () => {
    await stack.stopWorker();
    let ownWorker = false;
    try {
      const crashing = await startCrashingWorker(stack, 'when-killed');
      const billId = await closedBill('PT6S');
      const lifecycle = stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId));
      await eventually(async () => (await historyOf(lifecycle)).includes('timerStartedEventAttributes'));
      crashing.kill();
      expect(await crashing.exited).toBe('SIGKILL');
      const { invoice: open } = await accountOf(stack, billId);
      // Killed before the due date, or this test would prove nothing.
      expect(Date.now()).toBeLessThan(Date.parse(open.due_at));

      // The timer fires on the server, and the task it makes times out on the killed worker's
      // queue: no worker has run the lifecycle since, nothing has changed yet.
      await eventually(async () => {
        const kinds = await historyOf(lifecycle);
        const fired = kinds.indexOf('timerFiredEventAttributes');
        return fired >= 0 && kinds.slice(fired).includes('workflowTaskTimedOutEventAttributes');
      }, 20_000);
      expect((await accountOf(stack, billId)).invoice).toMatchObject({ status: 'open', overdue_at: null });
      expect(await eventCount(stack, billId, 'invoice.overdue')).toBe(0);

      await stack.startWorker();
      ownWorker = true;
      const overdue = await invoiceWhen(stack, billId, (i) => i.payment_status === 'overdue', 20_000);

      expect(overdue.due_at).toBe(open.due_at);
      const { invoice } = await accountOf(stack, billId);
      expect(Date.parse(invoice.overdue_at!)).toBeGreaterThanOrEqual(Date.parse(open.due_at));
      expect(await eventCount(stack, billId, 'invoice.overdue')).toBe(1);
    } finally {
      if (!ownWorker) await stack.startWorker();
    }
  });
});
