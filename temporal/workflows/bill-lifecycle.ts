/**
 * One workflow per bill, from creation to close. Changes arrive as updates (the caller gets a
 * confirmed result, and validators reject bad input before it reaches history); reads are queries.
 *
 * Postgres is the only counter. Every write of line items goes through one writer that runs it as
 * a local activity and adopts the ledger snapshot it returns ({version, totals}); the workflow
 * never adds amounts itself. Adds that arrive while a write is in flight wait and go together in
 * the next one: one transaction, one snapshot. A local activity runs inside the workflow task, so
 * an update's acceptance, its write's marker and its result reach the server in one completion.
 */
import {
  ApplicationFailure, ParentClosePolicy, allHandlersFinished, condition, continueAsNew, isCancellation, log, patched,
  proxyActivities, proxyLocalActivities, setHandler, startChild, uuid4, workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { AppError, isErrCode } from '../../core/errors';
import { sameTotals, totalsList, type TotalsByCurrency } from '../../core/money';
import { parseInterval, periodEnd, prorateFee, type Interval } from '../../bills/periods';
import type { BillHeader } from '../../bills/types';
import {
  batchTotals, checkBatchFitsBill, checkLineItemFitsBill, checkStagedBatchFitsBill, parseLineItemBatch, parseNewLineItem,
} from '../../lineitems/validation';
import type { Activities } from '../activities';
import {
  addLineItemUpdate, addLineItemsUpdate, addStagedLineItemsUpdate, appendLineItemsUpdate, billWorkflowId, cancelSeriesUpdate,
  closeBillUpdate, getBillQuery, openBillUpdate, postProcessWorkflowId, MAX_GROUP_ITEMS,
  type AddLineItemInput, type BillActivitySettings, type BillWorkflowInput, type CancelSeriesInput, type LedgerWrite,
  type LiveBill, type Refusal, type WriteLineItemsResult, type WriteOutcome,
} from '../shared';
import { addAll, adopt, idle, initialState, lineItemCount, liveBill, type BillState } from './bill-state';
import { legacyAddBatch, legacyAddOne } from './bill-legacy';
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

/**
 * Ledger snapshots (migration 7): the bill row and every line-item write by local activity, totals
 * adopted from the ledger. Histories without this marker took the regular activities of
 * bill-legacy.ts and replay through them.
 */
export const LEDGER_SNAPSHOTS = 'ledger-snapshots';

/**
 * Runs continue as new before their history passes this many events (patch HISTORY_CAP), so a
 * bill the worker evicted from its cache replays in a second or two when next needed. Without it,
 * a bill of a million items ran to 4,000 events in one run and missed a reconciliation sweep's
 * 10 s query deadline while replaying.
 */
export const HISTORY_CAP = 'history-cap';
const MAX_HISTORY_EVENTS = 2_000;

/** The close waits for an accepted cancel's write to the bill row (migration 9). */
export const CLOSE_AFTER_CANCEL = 'close-after-cancel';

/** Writes (items or staged batches) in one transaction of the writer. */
const MAX_WRITES_PER_TRANSACTION = 1000;

// For bills started before the settings travelled in the input.
const DEFAULT_ACTIVITY_SETTINGS: BillActivitySettings = { timeoutMs: 30_000, retryInitialMs: 200, retryMaxIntervalMs: 10_000 };
// Below the workflow task timeout (10 s), so a slow attempt is retried before the task times out.
const DEFAULT_LOCAL_TIMEOUT_MS = 5_000;

type DatabaseActivities = ReturnType<typeof databaseActivities>;
type LedgerActivities = ReturnType<typeof ledgerActivities>;

function databaseActivities(s: BillActivitySettings = DEFAULT_ACTIVITY_SETTINGS) {
  return proxyActivities<Activities>({
    startToCloseTimeout: s.timeoutMs,
    // No attempt limit: a database outage delays line items, it never drops an accepted one.
    retry: { initialInterval: s.retryInitialMs, backoffCoefficient: 2, maximumInterval: s.retryMaxIntervalMs },
  });
}

function ledgerActivities(s: BillActivitySettings = DEFAULT_ACTIVITY_SETTINGS) {
  return proxyLocalActivities<Activities>({
    startToCloseTimeout: s.localTimeoutMs ?? DEFAULT_LOCAL_TIMEOUT_MS,
    // No attempt limit either; once the backoff passes a second, the SDK waits on a durable timer
    // between attempts instead of holding the workflow task open.
    retry: { initialInterval: s.retryInitialMs, backoffCoefficient: 2, maximumInterval: s.retryMaxIntervalMs },
    localRetryThreshold: 1_000,
  });
}

/** Validators run outside history: turn a domain rejection into the failure the client sees. */
function reject(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) throw failureOf(err);
    throw err;
  }
}

function failureOf(r: Refusal): ApplicationFailure {
  return ApplicationFailure.create({ type: r.code, message: r.message, nonRetryable: true, details: [r.details] });
}

/** A rule's refusal as data, or null when the rule passes. */
function refusalOf(check: () => void): Refusal | null {
  try {
    check();
    return null;
  } catch (err) {
    if (err instanceof AppError) return { code: err.code, message: err.message, details: err.details };
    throw err;
  }
}

const retryLater = () => new AppError('unavailable', 'the bill is moving to a new workflow run; retry');

/**
 * Queues an update's writes for the ledger writer; their amounts stay reserved until they commit.
 * One promise per update, however many items: the SDK records a stack trace for every promise a
 * workflow creates, which was a fifth of the workflow thread's time in the add profile.
 */
function enqueue(state: BillState, writes: LedgerWrite[], reserved: TotalsByCurrency, alreadyReserved = false): Promise<WriteOutcome[]> {
  if (!alreadyReserved) addAll(state.pending, reserved, 1);
  return new Promise((settle) => state.queue.push({ writes, reserved, settle }));
}

const one = (currency: string, amount: number): TotalsByCurrency => ({ [currency]: { amount, count: 1 } });

/**
 * Items checked against the bill as it stands, each with the reservations of those before it, and
 * the admitted ones queued as one write group. Outcomes in input order.
 */
async function admit(state: BillState, inputs: AddLineItemInput[]): Promise<WriteOutcome[]> {
  const outcomes: (WriteOutcome | null)[] = [];
  const writes: LedgerWrite[] = [];
  const reserved: TotalsByCurrency = {};
  for (const input of inputs) {
    const refusal = refusalOf(() => checkLineItemFitsBill(parseNewLineItem(input), state));
    if (refusal) {
      outcomes.push({ status: 'refused', refusal });
    } else {
      outcomes.push(null);
      writes.push({ item: input });
      // Reserved at once: the next item of the group is checked with this one counted.
      addAll(state.pending, one(input.currency, input.amount), 1);
      addAll(reserved, one(input.currency, input.amount), 1);
    }
  }
  if (writes.length === 0) return outcomes as WriteOutcome[];
  const written = await enqueue(state, writes, reserved, true);
  let next = 0;
  return outcomes.map((o) => o ?? written[next++]);
}

/** A write's outcome as an update's answer: stored or applied, else the refusal as the update's failure. */
function settled(outcome: WriteOutcome): Exclude<WriteOutcome, { status: 'refused' }> {
  if (outcome.status === 'refused') throw failureOf(outcome.refusal);
  return outcome;
}

/**
 * The only writer of line items: waits for writes, sends everything queued as one group, adopts
 * the snapshot. Runs for the life of the run; it awaits nothing when nothing is queued, so a
 * history of the previous release (which never queues) replays unchanged.
 */
async function runLedgerWriter(state: BillState, billId: string, ledger: LedgerActivities): Promise<void> {
  for (;;) {
    await condition(() => (state.queue.length > 0 || state.refresh) && (state.persisted || state.conflict));
    let n = 0;
    let size = 0;
    while (n < state.queue.length && (n === 0 || size + state.queue[n].writes.length <= MAX_WRITES_PER_TRANSACTION)) size += state.queue[n++].writes.length;
    const group = state.queue.splice(0, n);
    const writes = group.flatMap((q) => q.writes);
    state.writing = true;
    // A group with no writes (after a previous-release write completed) reads the ledger's snapshot.
    state.refresh = false;
    let result: WriteLineItemsResult;
    try {
      if (state.conflict) throw notOurs(billId);
      result = await ledger.writeLineItems({ bill_id: billId, writes });
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Not reached in practice (the activity retries without limit and answers refusals as
      // outcomes). Whatever reaches here stands for the whole group, and its outcome is unknown.
      const cause = err instanceof ApplicationFailure ? err : (err as { cause?: unknown })?.cause;
      const refusal: Refusal = cause instanceof ApplicationFailure && isErrCode(cause.type) && cause.type !== 'unavailable'
        ? { code: cause.type, message: cause.message, details: null }
        : { code: 'aborted', message: 'the line items could not be written; retry with the same idempotency key', details: null };
      result = { snapshot: { version: 0, totals: {} }, outcomes: writes.map(() => ({ status: 'refused', refusal })) };
    }
    adopt(state, result.snapshot);
    for (const q of group) addAll(state.pending, q.reserved, -1);
    state.itemsThisRun += writes.reduce((k, w) => k + ('batch' in w ? w.batch.item_count : 1), 0);
    state.writing = false;
    let at = 0;
    for (const q of group) {
      q.settle(result.outcomes.slice(at, at + q.writes.length));
      at += q.writes.length;
    }
  }
}

const notOurs = (billId: string) =>
  ApplicationFailure.create({ type: 'failed_precondition', message: `bill ${billId} is not open`, nonRetryable: true });

/** The group's rules before history: refused whole when no item of it could be stored for the same reason. */
function checkGroup(state: BillState, items: unknown): void {
  if (state.draining) throw retryLater();
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_GROUP_ITEMS
    || items.some((i: { line_item_id?: unknown }) => typeof i?.line_item_id !== 'string')) {
    throw new AppError('invalid_argument', `1 to ${MAX_GROUP_ITEMS} items with line_item_id are required`);
  }
  const trial = { ...state, pending: {} as TotalsByCurrency };
  addAll(trial.pending, state.pending, 1);
  const refusals: Refusal[] = [];
  for (const input of items) {
    const refusal = refusalOf(() => {
      const item = parseNewLineItem(input);
      checkLineItemFitsBill(item, trial);
      addAll(trial.pending, one(item.currency, item.amount), 1);
    });
    if (!refusal) return;
    refusals.push(refusal);
  }
  const [first] = refusals;
  if (refusals.every((r) => r.code === first.code && r.message === first.message)) throw new AppError(first.code, first.message, first.details);
}

function registerHandlers(state: BillState, input: BillWorkflowInput, db: DatabaseActivities): void {
  const billId = input.bill.bill_id;
  // The id belongs to another bill (see persistBill): nothing may be added to or closed on it.
  const ours = () => {
    if (state.conflict) throw notOurs(billId);
  };
  setHandler(getBillQuery, () => liveBill(state));

  setHandler(openBillUpdate, async () => {
    // A new recurring bill answers with its period's fee already counted.
    const ready = () => state.persisted && (state.feeCharged || !input.bill.recurring_fee || state.status === 'closed');
    await condition(() => ready() || state.conflict);
    if (state.conflict) throw ApplicationFailure.create({ type: 'already_exists', message: `bill ${billId} already exists`, nonRetryable: true });
    return liveBill(state);
  });

  setHandler(
    appendLineItemsUpdate,
    async ({ items }) => {
      // The validator has just checked the group; each item is checked again as it is reserved.
      const outcomes = await admit(state, items);
      return {
        version: state.version,
        totals: totalsList(state.totals),
        results: outcomes.map((o) => (o.status === 'refused' ? { refused: o.refusal } : { created_at: (o as { created_at: string }).created_at })),
      };
    },
    { validator: (group) => { ours(); reject(() => checkGroup(state, group?.items)); } },
  );

  setHandler(
    addLineItemUpdate,
    async (item) => {
      if (!patched(LEDGER_SNAPSHOTS)) {
        const { line_item } = await legacyAddOne(state, item.currency, item.amount, async () => {
          await condition(() => state.persisted || state.conflict);
          ours();
          return db.persistLineItem({ ...item, bill_id: billId });
        });
        return { line_item, totals: liveBill(state).totals };
      }
      const [outcome] = await admit(state, [item]);
      const { created_at } = settled(outcome) as { created_at: string };
      const { line_item_id, amount, currency, description, metadata } = item;
      return { line_item: { line_item_id, bill_id: billId, amount, currency, description, metadata, created_at }, totals: totalsList(state.totals) };
    },
    {
      validator: (item) => reject(() => {
        ours();
        // Retryable by design: the API retries the same update id, which lands in the next run.
        if (state.draining) throw retryLater();
        if (typeof item?.line_item_id !== 'string') throw new AppError('invalid_argument', 'line_item_id is required');
        checkLineItemFitsBill(parseNewLineItem(item), state);
      }),
    },
  );

  setHandler(
    addStagedLineItemsUpdate,
    async (ref) => {
      if (!patched(LEDGER_SNAPSHOTS)) {
        const { count } = await legacyAddBatch(state, ref.totals, async () => {
          await condition(() => state.persisted || state.conflict);
          ours();
          return db.persistStagedLineItems({ ...ref, bill_id: billId });
        });
        return { added: count, totals: liveBill(state).totals };
      }
      settled((await enqueue(state, [{ batch: ref }], ref.totals))[0]);
      return { added: ref.item_count, totals: totalsList(state.totals), version: state.version };
    },
    {
      validator: (ref) => reject(() => {
        ours();
        if (state.draining) throw retryLater();
        checkStagedBatchFitsBill(ref, state);
      }),
    },
  );

  setHandler(
    addLineItemsUpdate,
    async ({ items }) => {
      if (!patched(LEDGER_SNAPSHOTS)) {
        const { count } = await legacyAddBatch(state, batchTotals(items), async () => {
          await condition(() => state.persisted || state.conflict);
          ours();
          return db.persistLineItems({ items, bill_id: billId });
        });
        return { added: count, totals: liveBill(state).totals };
      }
      // Each item its own write: a repeated id is stored, and counted, once.
      (await enqueue(state, items.map((item) => ({ item })), batchTotals(items))).forEach(settled);
      return { added: items.length, totals: totalsList(state.totals), version: state.version };
    },
    {
      validator: (batch) => reject(() => {
        ours();
        if (state.draining) throw retryLater();
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
    ours();
    return liveBill(state);
  }, { validator: () => reject(() => {
    ours();
    // Like a subscription: its periods are the policy. Ending it early is a cancellation.
    if (input.bill.interval && !state.cancelled && state.status === 'open') {
      throw new AppError('failed_precondition', 'a recurring bill closes at the end of its period; to end the series now, cancel it with close_now', {
        policy: input.bill.policy,
      });
    }
  }) });

  setHandler(cancelSeriesUpdate, async ({ close_now }) => {
    state.cancelled = true;
    state.cancelling++;
    try {
      await condition(() => state.persisted || state.conflict);
      ours();
      await db.cancelSeries({ bill_id: billId, at: new Date(Date.now()).toISOString() });
    } finally {
      state.cancelling--;
    }
    if (close_now) {
      state.closeRequested = true;
      await condition(() => state.status === 'closed');
    }
    return liveBill(state);
  }, { validator: (_req: CancelSeriesInput) => reject(() => {
    ours();
    if (!input.bill.interval) throw new AppError('failed_precondition', 'only a recurring bill has a series to cancel; close this one instead');
    if (state.status === 'closed' && !state.cancelled && state.nextBillId === null) {
      throw new AppError('failed_precondition', `bill ${billId} is closed`, { status: 'closed' });
    }
    if (state.nextBillId !== null) {
      throw new AppError('failed_precondition', `bill ${billId} has ended; its series continues with bill ${state.nextBillId}`, {
        status: state.status, next_bill_id: state.nextBillId,
      });
    }
    // A bill whose close has begun changes no more; a cancelled one may hear its cancel again.
    if (state.status !== 'open' && !state.cancelled) {
      throw new AppError('failed_precondition', `bill ${billId} is ${state.status}`, { status: state.status });
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
    const charge = {
      amount, currency: fee.currency, description: fee.description,
      metadata: { recurring_fee: true, period_start: bill.billing_period_start, period_end: bill.billing_period_end, full_amount: fee.amount },
    };
    if (patched(LEDGER_SNAPSHOTS)) {
      const [outcome] = await enqueue(state, [{ recurring_fee: charge }], one(fee.currency, amount));
      if (outcome.status === 'refused') log.error('the recurring fee was refused', { billId: bill.bill_id, refusal: outcome.refusal });
    } else {
      await legacyAddOne(state, fee.currency, amount, () => db.chargeRecurringFee({ bill_id: bill.bill_id, ...charge }));
    }
  }
  state.feeCharged = true;
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
  const ledger = ledgerActivities(input.activitySettings);
  registerHandlers(state, input, db);
  void runLedgerWriter(state, input.bill.bill_id, ledger);

  if (!state.persisted) {
    // By local activity: with Update-with-Start, the row, the update's acceptance and its answer
    // travel in the first workflow task.
    const persist = patched(LEDGER_SNAPSHOTS) ? ledger.persistBill : db.persistBill;
    const outcome = await persist(input.bill);
    if (outcome === 'conflict' || outcome === 'already_closed') {
      // Not this workflow's bill to run: answer the waiting handlers and stop, running nothing twice.
      if (outcome === 'conflict') state.conflict = true;
      else Object.assign(state, { status: 'closed', persisted: true });
      await condition(() => idle(state) && allHandlersFinished());
      return liveBill(state);
    }
    state.persisted = true;
  }
  if (input.bill.recurring_fee && !state.feeCharged) await chargeRecurringFee(state, input.bill, db);

  const periodEnd = Date.parse(input.bill.billing_period_end);
  const threshold = input.continueAsNewAfterItems ?? 0;
  const capped = patched(HISTORY_CAP);
  const rollover = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || (threshold > 0 && state.itemsThisRun >= threshold) || (capped && info.historyLength >= MAX_HISTORY_EVENTS);
  };
  const remaining = periodEnd - Date.now();
  if (remaining > 0) await condition(() => state.closeRequested || rollover(), remaining);

  if (!state.closeRequested && Date.now() < periodEnd) {
    // Rollover: turn new adds away (they retry into the next run) so queued and in-flight writes
    // can drain, unless a close arrives or the period ends meanwhile.
    state.draining = true;
    const drained = await condition(
      () => state.closeRequested || (idle(state) && allHandlersFinished()),
      periodEnd - Date.now(),
    );
    if (drained && !state.closeRequested) {
      const carried = {
        version: state.version, totals: state.totals, lineItemCount: lineItemCount(state.totals),
        continuedAsNew: state.continuedAsNew + 1, feeCharged: state.feeCharged, cancelled: state.cancelled,
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
  const waitsForCancel = patched(CLOSE_AFTER_CANCEL);
  state.status = 'closing';
  // A cancel accepted before the close writes to the bill row first (the database refuses any
  // change to a closed bill since migration 9). Histories from before this wait replay without it.
  await condition(() => idle(state) && (state.cancelling === 0 || !waitsForCancel));
  const stored = await db.closeBill({ bill_id: billId, closed_at: new Date(Date.now()).toISOString() });
  if (!sameTotals(stored.totals, state.totals)) {
    // Postgres is the system of record; a mismatch means a write committed that no snapshot
    // brought back (or a bug): worth an alert, never a wrong invoice.
    if (patched(REPORT_TOTALS_MISMATCH)) {
      await db.reportTotalsMismatch({ bill_id: billId, live: state.totals, stored: stored.totals });
    } else {
      log.error('live totals differ from stored line items; using stored', { billId, live: state.totals, stored: stored.totals });
    }
  }
  state.totals = stored.totals;
  state.version = Math.max(state.version, stored.version ?? 0);
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
