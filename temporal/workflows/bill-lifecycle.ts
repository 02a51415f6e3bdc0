/**
 * One workflow per bill, from creation to close. Changes arrive as updates (the caller gets a
 * confirmed result, and validators reject bad input before it reaches history); reads are queries.
 */
import {
  ApplicationFailure, ParentClosePolicy, allHandlersFinished, condition,
  continueAsNew, log, patched, proxyActivities, setHandler, startChild, uuid4, workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { AppError } from '../../core/errors';
import { parseInterval, periodEnd, prorateFee, type Interval } from '../../bills/periods';
import type { BillHeader } from '../../bills/types';
import {
  batchTotals, checkBatchFitsBill, checkLineItemFitsBill, checkStagedBatchFitsBill, parseLineItemBatch, parseNewLineItem,
} from '../../lineitems/validation';
import type { Activities } from '../activities';
import {
  addLineItemUpdate, addLineItemsUpdate, addStagedLineItemsUpdate, billWorkflowId, cancelSeriesUpdate, closeBillUpdate, getBillQuery, openBillUpdate, postProcessWorkflowId,
  type BillActivitySettings, type BillWorkflowInput, type CancelSeriesInput, type LiveBill,
} from '../shared';
import { sameTotals, type TotalsByCurrency } from '../../core/money';
import { addTotals, adjust, initialState, liveBill, type BillState } from './bill-state';
import { closedBillPostProcessWorkflow } from './post-process';

/**
 * Rolled out with patched() (README, "Changing a workflow safely"): a mismatch at close is now
 * reported by an activity (metric and error line from the worker) instead of a workflow log line.
 * A bill that was already running and closed with a mismatch before the deploy has no activity in
 * its history at that point; patched() is false while replaying it, so it takes the old branch.
 * tests/replay/histories/totals-mismatch-at-close.json is such a history. Once no bill started
 * before the deploy is running, this becomes deprecatePatch(), and later the old branch goes.
 */
export const REPORT_TOTALS_MISMATCH = 'report-totals-mismatch-at-close';

// For bills started before the settings travelled in the input.
const DEFAULT_ACTIVITY_SETTINGS: BillActivitySettings = { timeoutMs: 30_000, retryInitialMs: 200, retryMaxIntervalMs: 10_000 };

type DatabaseActivities = ReturnType<typeof databaseActivities>;

function databaseActivities(s: BillActivitySettings = DEFAULT_ACTIVITY_SETTINGS) {
  return proxyActivities<Activities>({
    startToCloseTimeout: s.timeoutMs,
    // No attempt limit: a database outage delays line items, it never drops an accepted one.
    retry: { initialInterval: s.retryInitialMs, backoffCoefficient: 2, maximumInterval: s.retryMaxIntervalMs },
  });
}

/** Validators run outside history: turn a domain rejection into the failure the client sees. */
function reject(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) {
      throw ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: true, details: [err.details] });
    }
    throw err;
  }
}

function registerHandlers(state: BillState, input: BillWorkflowInput, db: DatabaseActivities): void {
  const billId = input.bill.bill_id;
  // The id belongs to another bill (see persistBill): nothing may be added to or closed on it.
  const notOurs = () => ApplicationFailure.create({ type: 'failed_precondition', message: `bill ${billId} is not open`, nonRetryable: true });
  setHandler(getBillQuery, () => liveBill(state));

  setHandler(openBillUpdate, async () => {
    // A new recurring bill answers with its period's fee already counted.
    const ready = () => state.persisted && (state.feeCharged || !input.bill.recurring_fee || state.status === 'closed');
    await condition(() => ready() || state.conflict);
    if (state.conflict) throw ApplicationFailure.create({ type: 'already_exists', message: `bill ${billId} already exists`, nonRetryable: true });
    return liveBill(state);
  });

  setHandler(
    addLineItemUpdate,
    async (item) => {
      // The validator has just checked the item against this state.
      const { line_item } = await addCounted(state, item.currency, item.amount, async () => {
        await condition(() => state.persisted || state.conflict);
        if (state.conflict) throw notOurs();
        return db.persistLineItem({ ...item, bill_id: billId });
      });
      return { line_item, totals: liveBill(state).totals };
    },
    {
      validator: (item) => reject(() => {
        if (state.conflict) throw notOurs();
        // Retryable by design: the API retries the same update id, which lands in the next run.
        if (state.draining) throw new AppError('unavailable', 'the bill is moving to a new workflow run; retry');
        if (typeof item?.line_item_id !== 'string') throw new AppError('invalid_argument', 'line_item_id is required');
        checkLineItemFitsBill(parseNewLineItem(item), state);
      }),
    },
  );

  // A batch's way into the totals: its sums reserved before the first await, as for a single add.
  const addBatch = async (reserve: TotalsByCurrency, persist: () => Promise<{ added: TotalsByCurrency; count: number }>) => {
    for (const [currency, t] of Object.entries(reserve)) addTotals(state.pending, currency, t.amount, t.count);
    state.inflightAdds++;
    try {
      await condition(() => state.persisted || state.conflict);
      if (state.conflict) throw notOurs();
      const { added, count } = await persist();
      for (const [currency, t] of Object.entries(added)) addTotals(state.totals, currency, t.amount, t.count);
      state.lineItemCount += count;
      state.itemsThisRun += count;
      return { added: count, totals: liveBill(state).totals };
    } finally {
      for (const [currency, t] of Object.entries(reserve)) addTotals(state.pending, currency, -t.amount, -t.count);
      state.inflightAdds--;
    }
  };

  setHandler(
    addStagedLineItemsUpdate,
    (ref) => addBatch(ref.totals, () => db.persistStagedLineItems({ ...ref, bill_id: billId })),
    {
      validator: (ref) => reject(() => {
        if (state.conflict) throw notOurs();
        if (state.draining) throw new AppError('unavailable', 'the bill is moving to a new workflow run; retry');
        checkStagedBatchFitsBill(ref, state);
      }),
    },
  );

  setHandler(
    addLineItemsUpdate,
    ({ items }) => addBatch(batchTotals(items), () => db.persistLineItems({ items, bill_id: billId })),
    {
      validator: (batch) => reject(() => {
        if (state.conflict) throw notOurs();
        if (state.draining) throw new AppError('unavailable', 'the bill is moving to a new workflow run; retry');
        const items = Array.isArray(batch?.items) ? batch.items : [];
        if (items.length === 0 || items.some((i: { line_item_id?: unknown }) => typeof i?.line_item_id !== 'string')) {
          throw new AppError('invalid_argument', 'items with line_item_id are required');
        }
        checkBatchFitsBill(parseLineItemBatch({ items }), state);
      }),
    },
  );

  setHandler(closeBillUpdate, async () => {
    state.closeRequested = true;
    await condition(() => state.status === 'closed' || state.conflict);
    if (state.conflict) throw notOurs();
    return liveBill(state);
  }, { validator: () => reject(() => {
    if (state.conflict) throw notOurs();
    // Like a subscription: its periods are the policy. Ending it early is a cancellation.
    if (input.bill.interval && !state.cancelled && state.status === 'open') {
      throw new AppError('failed_precondition', 'a recurring bill closes at the end of its period; to end the series now, cancel it with close_now', {
        policy: input.bill.policy,
      });
    }
  }) });

  setHandler(cancelSeriesUpdate, async ({ close_now }) => {
    state.cancelled = true;
    await condition(() => state.persisted || state.conflict);
    if (state.conflict) throw notOurs();
    await db.cancelSeries({ bill_id: billId, at: new Date(Date.now()).toISOString() });
    if (close_now) {
      state.closeRequested = true;
      await condition(() => state.status === 'closed');
    }
    return liveBill(state);
  }, { validator: (_req: CancelSeriesInput) => reject(() => {
    if (state.conflict) throw notOurs();
    if (!input.bill.interval) throw new AppError('failed_precondition', 'only a recurring bill has a series to cancel; close this one instead');
    if (state.status === 'closed' && !state.cancelled && state.nextBillId === null) {
      throw new AppError('failed_precondition', `bill ${billId} is closed`, { status: 'closed' });
    }
    if (state.nextBillId !== null) {
      throw new AppError('failed_precondition', `bill ${billId} has ended; its series continues with bill ${state.nextBillId}`, {
        status: state.status, next_bill_id: state.nextBillId,
      });
    }
  }) });
}

/** The period's recurring fee, prorated when the period is partial: once per bill. */
async function chargeRecurringFee(state: BillState, bill: BillWorkflowInput['bill'], db: DatabaseActivities): Promise<void> {
  const fee = bill.recurring_fee!;
  const interval = parseInterval(bill.interval!) as Interval; // validated when the series was created
  const start = new Date(bill.billing_period_start);
  const end = new Date(bill.billing_period_end);
  const amount = prorateFee(fee.amount, start, end, interval, bill.billing_anchor_day ?? 1);
  if (amount > 0) {
    await addCounted(state, fee.currency, amount, () => db.chargeRecurringFee({
      bill_id: bill.bill_id, amount, currency: fee.currency, description: fee.description,
      metadata: { recurring_fee: true, period_start: bill.billing_period_start, period_end: bill.billing_period_end, full_amount: fee.amount },
    }));
  }
  state.feeCharged = true;
}

/**
 * One line item's way into the totals: reserved before the first await (so concurrent adds cannot
 * overflow a total, and the close path waits for it), counted once if this activity stored it.
 */
async function addCounted<T extends { isNew: boolean }>(state: BillState, currency: string, amount: number, persist: () => Promise<T>): Promise<T> {
  adjust(state.pending, currency, amount, 1);
  state.inflightAdds++;
  try {
    const result = await persist();
    if (result.isNew) {
      adjust(state.totals, currency, amount, 1);
      state.lineItemCount++;
      state.itemsThisRun++;
    }
    return result;
  } finally {
    adjust(state.pending, currency, amount, -1);
    state.inflightAdds--;
  }
}

/** The next period's bill of a series, started by the bill that ends (abandoned, like the invoice). */
async function renew(input: BillWorkflowInput, state: BillState): Promise<void> {
  const bill = input.bill;
  const interval = parseInterval(bill.interval!) as Interval;
  // Periods follow each other without a gap, also when this one closed late (a worker was down).
  const start = bill.billing_period_end;
  const next: BillHeader = {
    ...bill,
    bill_id: uuid4(),
    billing_period_start: start,
    billing_period_end: periodEnd(new Date(start), interval, bill.billing_anchor_day ?? 1).toISOString(),
    created_at: new Date(Date.now()).toISOString(),
    previous_bill_id: bill.bill_id,
    request_fingerprint: `renewal of ${bill.bill_id}`,
  };
  state.nextBillId = next.bill_id;
  try {
    await startChild(billLifecycleWorkflow, {
      workflowId: billWorkflowId(next.bill_id),
      args: [{ bill: next, continueAsNewAfterItems: input.continueAsNewAfterItems, activitySettings: input.activitySettings }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

export async function billLifecycleWorkflow(input: BillWorkflowInput): Promise<LiveBill> {
  const state = initialState(input);
  const db = databaseActivities(input.activitySettings);
  registerHandlers(state, input, db);

  if (!state.persisted) {
    const outcome = await db.persistBill(input.bill);
    if (outcome === 'conflict' || outcome === 'already_closed') {
      // Not this workflow's bill to run: answer the waiting handlers and stop, running nothing twice.
      if (outcome === 'conflict') state.conflict = true;
      else Object.assign(state, { status: 'closed', persisted: true });
      await condition(allHandlersFinished);
      return liveBill(state);
    }
    state.persisted = true;
  }
  if (input.bill.recurring_fee && !state.feeCharged) await chargeRecurringFee(state, input.bill, db);

  const periodEnd = Date.parse(input.bill.billing_period_end);
  const threshold = input.continueAsNewAfterItems ?? 0;
  const rollover = () => workflowInfo().continueAsNewSuggested || (threshold > 0 && state.itemsThisRun >= threshold);
  const remaining = periodEnd - Date.now();
  if (remaining > 0) await condition(() => state.closeRequested || rollover(), remaining);

  if (!state.closeRequested && Date.now() < periodEnd) {
    // Rollover: turn new adds away (they retry into the next run) so in-flight ones can drain,
    // unless a close arrives or the period ends meanwhile.
    state.draining = true;
    const drained = await condition(
      () => state.closeRequested || (state.inflightAdds === 0 && allHandlersFinished()),
      periodEnd - Date.now(),
    );
    if (drained && !state.closeRequested) {
      const carried = {
        totals: state.totals, lineItemCount: state.lineItemCount, continuedAsNew: state.continuedAsNew + 1,
        feeCharged: state.feeCharged, cancelled: state.cancelled,
      };
      return continueAsNew<typeof billLifecycleWorkflow>({ ...input, carried });
    }
    state.draining = false;
  }

  await close(state, input, db);
  await condition(allHandlersFinished);
  return liveBill(state);
}

async function close(state: BillState, input: BillWorkflowInput, db: DatabaseActivities): Promise<void> {
  const billId = input.bill.bill_id;
  state.status = 'closing';
  await condition(() => state.inflightAdds === 0);
  const stored = await db.closeBill({ bill_id: billId, closed_at: new Date(Date.now()).toISOString() });
  if (!sameTotals(stored.totals, state.totals)) {
    // Postgres is the system of record; a mismatch means a bug worth an alert, not a wrong invoice.
    if (patched(REPORT_TOTALS_MISMATCH)) {
      await db.reportTotalsMismatch({ bill_id: billId, live: state.totals, stored: stored.totals });
    } else {
      log.error('live totals differ from stored line items; using stored', { billId, live: state.totals, stored: stored.totals });
    }
  }
  state.totals = stored.totals;
  state.closedAt = stored.closed_at;
  try {
    await startChild(closedBillPostProcessWorkflow, {
      workflowId: postProcessWorkflowId(billId),
      args: [{ bill_id: billId }],
      // The invoice must not depend on this workflow staying around, nor delay its completion.
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  if (input.bill.interval && !state.cancelled) await renew(input, state);
  state.status = 'closed';
}
