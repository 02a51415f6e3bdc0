/**
 * Recurring bills over HTTP with a short interval: consecutive periods, each closed with exactly
 * one recurring fee plus its usage items, the next opened and linked, until cancelled.
 */
import { billWorkflowId } from '../../bills/messages';
import { call, eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.stop());

const FEE = { amount: 500, currency: 'USD', description: 'Platform fee' };

async function lineItems(billId: string): Promise<any[]> {
  return (await call(stack, 'GET', `/bills/${billId}/line-items?limit=1000`)).body.line_items;
}

/** Adds usage to an open bill; a bill that closed meanwhile refuses it, which is fine. */
async function addUsage(billId: string, amount: number): Promise<boolean> {
  const r = await call(stack, 'POST', `/bills/${billId}/line-items`, { amount, currency: 'USD', description: `usage ${amount}` });
  if (r.status === 200) return true;
  expect(r.body).toMatchObject({ code: 'failed_precondition' });
  return false;
}

const closedBill = (billId: string, timeoutMs = 30_000) =>
  eventually(async () => {
    const b = (await call(stack, 'GET', `/bills/${billId}`)).body;
    return b.status === 'closed' ? b : null;
  }, timeoutMs);

describe('a recurring bill', () => {
  it('runs consecutive periods, each with one fee and its usage, until its series is cancelled', async () => {
    const first = uid('series');
    const created = await call(stack, 'POST', '/bills', {
      bill_id: first,
      policy: 'recurring',
      interval: 'PT6S',
      recurring_fee: FEE,
      customer_email: 'ap@example.com',
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      policy: 'recurring',
      interval: 'PT6S',
      series_id: first,
      previous_bill_id: null,
      recurring_fee: FEE,
      cancelled_at: null,
    });
    // No end given: a full first period.
    expect(Date.parse(created.body.billing_period_end) - Date.parse(created.body.billing_period_start)).toBe(6000);

    const bills: any[] = [];
    const usage = new Map<string, number[]>();
    let current = first;
    for (let period = 1; period <= 3; period++) {
      const landed: number[] = [];
      for (const amount of [period * 10, period * 10 + 1]) if (await addUsage(current, amount)) landed.push(amount);
      usage.set(current, landed);
      if (period === 3) {
        // Stops renewal; this period still runs to its end.
        const cancelled = await call(stack, 'POST', `/bills/${current}/cancel`, {});
        expect(cancelled.status).toBe(200);
        expect(cancelled.body).toMatchObject({ cancelled_at: expect.any(String) });
        // Accepted while open; the period may have ended while the cancel was written (the close
        // waits for it), so the answer may already say closing.
        expect(['open', 'closing']).toContain(cancelled.body.status);
      }
      const closed = await closedBill(current);
      bills.push(closed);
      if (period < 3) {
        current = await eventually(async () => (await call(stack, 'GET', `/bills/${closed.bill_id}`)).body.next_bill_id);
      }
    }

    for (const [i, bill] of bills.entries()) {
      expect(bill).toMatchObject({ status: 'closed', series_id: first, previous_bill_id: i === 0 ? null : bills[i - 1].bill_id });
      if (i > 0) expect(bill.billing_period_start).toBe(bills[i - 1].billing_period_end);
      const items = await lineItems(bill.bill_id);
      const fees = items.filter((li) => li.metadata?.recurring_fee === true);
      expect(fees).toHaveLength(1);
      expect(fees[0]).toMatchObject({ amount: 500, currency: 'USD', description: 'Platform fee' });
      const usageAmounts = items
        .filter((li) => !li.metadata?.recurring_fee)
        .map((li) => li.amount)
        .sort();
      expect(usageAmounts).toEqual(usage.get(bill.bill_id)!.sort());
      const total = 500 + usageAmounts.reduce((a: number, b: number) => a + b, 0);
      expect(bill.totals).toEqual([
        { currency: 'USD', amount: total, line_item_count: 1 + usageAmounts.length, formatted: expect.any(String) },
      ]);
    }
    expect(bills[1].previous_bill_id).toBe(first);
    expect((await call(stack, 'GET', `/bills/${first}`)).body.next_bill_id).toBe(bills[1].bill_id);

    // Cancelled: the third is the last. A bill renews before its workflow completes (at its close),
    // so once the third's workflow has completed, no fourth period was started and none will be.
    const third = stack.deps.temporal.workflow.getHandle(billWorkflowId(bills[2].bill_id));
    await third.result();
    const { events } = await third.fetchHistory();
    const renewals = (events ?? [])
      .map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)
      .filter((started) => started?.workflowType?.name === 'billLifecycleWorkflow');
    expect(renewals.map((started) => started!.workflowId)).toEqual([]);
    expect((await call(stack, 'GET', `/bills/${bills[2].bill_id}`)).body.next_bill_id).toBeNull();
    const series = (await call(stack, 'GET', `/bills?series_id=${first}&limit=100`)).body.bills;
    expect(series.map((b: { bill_id: string }) => b.bill_id).sort()).toEqual(bills.map((b) => b.bill_id).sort());
    // Cancelling again answers the same bill; its invoice went out like any other.
    expect((await call(stack, 'POST', `/bills/${bills[2].bill_id}/cancel`, {})).body).toMatchObject({
      bill_id: bills[2].bill_id,
      cancelled_at: expect.any(String),
    });
    await eventually(async () => (await call(stack, 'GET', `/bills/${bills[0].bill_id}`)).body.invoice?.status === 'sent');
  }, 120_000);

  it('prorates the fee of a partial first period, and closes now when cancelled with close_now', async () => {
    const first = uid('series');
    const created = (
      await call(stack, 'POST', '/bills', {
        bill_id: first,
        policy: 'recurring',
        interval: 'PT1H',
        recurring_fee: { ...FEE, amount: 1000 },
        billing_period_end: inSeconds(45 * 60),
      })
    ).body;
    // The period runs from the service's clock to 45 minutes after the test's, d ms apart (the time
    // the request took to arrive): 1000 × (2,700,000 − d) / 3,600,000 = 750 − d / 3,600, which
    // rounds to 750 for any d under 1,800 ms (a full hour would be 1000; an end-exclusive or
    // truncating proration 749).
    const expected = 750;
    expect(Date.parse(created.billing_period_end) - Date.parse(created.billing_period_start)).toBeGreaterThan(2_700_000 - 1_800);
    // The answer to the create already counts the fee.
    expect(created.totals).toEqual([{ currency: 'USD', amount: expected, line_item_count: 1, formatted: '7.50 USD' }]);
    const fee = (await lineItems(first)).filter((li) => li.metadata?.recurring_fee);
    expect(fee).toEqual([expect.objectContaining({ amount: expected, metadata: expect.objectContaining({ full_amount: 1000 }) })]);

    // Close is not how a series ends early.
    const close = await call(stack, 'POST', `/bills/${first}/close`);
    expect(close.status).toBe(400);
    expect(close.body).toMatchObject({ code: 'failed_precondition', message: expect.stringContaining('cancel') });

    const cancelled = await call(stack, 'POST', `/bills/${first}/cancel`, { close_now: true });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'closed', cancelled_at: expect.any(String), next_bill_id: null });
    expect(cancelled.body.totals).toEqual([{ currency: 'USD', amount: expected, line_item_count: 1, formatted: expect.any(String) }]);
    expect((await call(stack, 'GET', `/bills?series_id=${first}`)).body.bills).toHaveLength(1);
  });

  it('monthly: a calendar month, or to the anchor day; rules for the fields', async () => {
    const nextMonth = () => {
      const now = new Date();
      return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
    };
    const before = nextMonth();
    const monthly = (await call(stack, 'POST', '/bills', { policy: 'monthly' })).body;
    expect(monthly).toMatchObject({ policy: 'monthly', interval: 'P1M', billing_anchor_day: 1 });
    // The first of next month, as of the request (which may straddle a month's end).
    expect([before, nextMonth()]).toContain(monthly.billing_period_end);

    const bad = async (body: Record<string, unknown>, field: string) => {
      const r = await call(stack, 'POST', '/bills', body);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 'invalid_argument', details: { field } });
    };
    await bad({ policy: 'recurring' }, 'interval');
    await bad({ policy: 'recurring', interval: 'P1M2D' }, 'interval');
    await bad({ policy: 'recurring', interval: 'P10Y' }, 'interval');
    await bad({ policy: 'recurring', interval: 'P99999999999W' }, 'interval');
    await bad({ policy: 'monthly', interval: 'P1W' }, 'interval');
    await bad({ policy: 'usage_based', billing_period_end: inSeconds(60), interval: 'P1M' }, 'interval');
    await bad({ policy: 'recurring', interval: 'P1D', billing_anchor_day: 3 }, 'billing_anchor_day');
    await bad({ policy: 'monthly', billing_anchor_day: 32 }, 'billing_anchor_day');
    await bad({ policy: 'recurring', interval: 'PT10S', billing_period_end: inSeconds(60) }, 'billing_period_end');
    await bad({ policy: 'monthly', billing_period_end: inSeconds(60) }, 'billing_period_end'); // not a boundary
    await bad({ policy: 'monthly', recurring_fee: { amount: 1.5, currency: 'USD', description: 'x' } }, 'recurring_fee.amount');
    await bad({ policy: 'monthly', currency: 'EUR', recurring_fee: FEE }, 'recurring_fee.currency');

    // A retry of a create whose period end the service computed is the same request, later.
    const key = { 'idempotency-key': `sub-${uid()}` };
    const sub = await call(stack, 'POST', '/bills', { policy: 'recurring', interval: 'PT1H' }, key);
    await new Promise((r) => setTimeout(r, 20));
    const again = await call(stack, 'POST', '/bills', { policy: 'recurring', interval: 'PT1H' }, key);
    expect(again.status).toBe(200);
    expect(again.body.bill_id).toBe(sub.body.bill_id);
    const named = uid('series');
    expect((await call(stack, 'POST', '/bills', { bill_id: named, policy: 'monthly' })).status).toBe(200);
    expect((await call(stack, 'POST', '/bills', { bill_id: named, policy: 'monthly' })).body).toMatchObject({
      bill_id: named,
      policy: 'monthly',
    });

    // A usage-based bill has no series to cancel.
    const usage = uid();
    await call(stack, 'POST', '/bills', { bill_id: usage, billing_period_end: inSeconds(600) });
    expect((await call(stack, 'POST', `/bills/${usage}/cancel`, {})).body).toMatchObject({ code: 'failed_precondition' });
    expect((await call(stack, 'POST', `/bills/${usage}/cancel`, { close_now: 'yes' })).body).toMatchObject({
      code: 'invalid_argument',
      details: { field: 'close_now' },
    });
  });
});
