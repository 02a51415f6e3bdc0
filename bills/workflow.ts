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
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError, type SearchAttributeUpdatePair } from '@temporalio/common';
import { sameTotals, totalsList } from '../core/money';
import { failureOf, refuseAsFailure, refusalIn, type Refusal } from '../core/refusals';
import type { AddedLineItem } from './types';
import { batchTotals } from './line-item-rules';
import { InvoiceStatusKey, postProcessSummary, postProcessWorkflowId } from '../invoices/messages';
import { closedBillPostProcessWorkflow } from '../invoices/workflow';
import type { BillActivities } from './activities';
import { BillState } from './bill-state';
import {
  addLineItemUpdate,
  addLineItemsUpdate,
  addStagedLineItemsUpdate,
  appendLineItemsUpdate,
  billWorkflowId,
  cancelSeriesUpdate,
  closeBillUpdate,
  getBillQuery,
  openBillUpdate,
  type AddLineItemInput,
  type AddLineItemsInput,
  type AddLineItemsResult,
  type AddStagedLineItemsInput,
  type AppendLineItemsInput,
  type AppendLineItemsResult,
  type BillActivitySettings,
  type BillWorkflowInput,
  type CancelSeriesInput,
  type LiveBill,
  type WriteLineItemsResult,
  type WriteOutcome,
} from './messages';
import { gracePeriodMs, parseInterval, periodEnd, prorateFee, type Interval } from './periods';
import { BILL_SEARCH_ATTRIBUTES, BillCurrenciesKey, BillStatusKey, billSearchAttributes, billSummary } from './search-attributes';
import type { BillHeader } from './types';
import { legacyAddBatch, legacyAddOne } from './workflow-legacy';

/**
 * Rolled out with patched() (docs/reliability.md, "Changing a workflow safely"): a mismatch at close is now
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
 * workflow-legacy.ts and replay through them.
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

/**
 * Search attributes (bills/search-attributes.ts) kept current as the bill moves: its status, the
 * currencies it holds; a bill started by the previous release gets the full set with its first
 * upsert. Children (the next period, the invoice) start with theirs and a summary. Histories
 * recorded before this replay without any of it.
 */
export const SEARCH_ATTRIBUTES = 'search-attributes';

/** Upserts `pairs`; on a bill of the previous release, which has none yet, the full set instead. */
function show(bill: BillState, pairs: () => SearchAttributeUpdatePair[]): void {
  if (!patched(SEARCH_ATTRIBUTES)) return;
  const hasSet = workflowInfo().typedSearchAttributes.get(BillStatusKey) !== undefined;
  upsertSearchAttributes(hasSet ? pairs() : billSearchAttributes(bill.bill, bill.status, Object.keys(bill.totals)));
}

const showStatus = (bill: BillState) => show(bill, () => [{ key: BillStatusKey, value: bill.status }]);

/** A currency the bill did not hold before: the list grows (a bill restricted to one has it from the start). */
function showCurrencies(bill: BillState, before: string[]): void {
  const now = Object.keys(bill.totals).sort();
  if (bill.currency || now.every((c) => before.includes(c))) return;
  show(bill, () => [{ key: BillCurrenciesKey, value: now }]);
}

// For bills started before the settings travelled in the input.
const DEFAULT_ACTIVITY_SETTINGS: BillActivitySettings = { timeoutMs: 30_000, retryInitialMs: 200, retryMaxIntervalMs: 10_000 };
// Below the workflow task timeout (10 s), so a slow attempt is retried before the task times out.
const DEFAULT_LOCAL_TIMEOUT_MS = 5_000;

type DatabaseActivities = ReturnType<typeof databaseActivities>;
type LedgerActivities = ReturnType<typeof ledgerActivities>;

function databaseActivities(s: BillActivitySettings = DEFAULT_ACTIVITY_SETTINGS) {
  return proxyActivities<BillActivities>({
    startToCloseTimeout: s.timeoutMs,
    // No attempt limit: a database outage delays line items, it never drops an accepted one.
    retry: { initialInterval: s.retryInitialMs, backoffCoefficient: 2, maximumInterval: s.retryMaxIntervalMs },
  });
}

function ledgerActivities(s: BillActivitySettings = DEFAULT_ACTIVITY_SETTINGS) {
  return proxyLocalActivities<BillActivities>({
    startToCloseTimeout: s.localTimeoutMs ?? DEFAULT_LOCAL_TIMEOUT_MS,
    // No attempt limit either; once the backoff passes a second, the SDK waits on a durable timer
    // between attempts instead of holding the workflow task open.
    retry: { initialInterval: s.retryInitialMs, backoffCoefficient: 2, maximumInterval: s.retryMaxIntervalMs },
    localRetryThreshold: 1_000,
  });
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
async function runLedgerWriter(bill: BillState, ledger: LedgerActivities): Promise<void> {
  const billId = bill.bill.bill_id;
  for (;;) {
    await condition(() => bill.hasWork());
    const group = bill.takeGroup();
    const writes = group.flatMap((q) => q.writes);
    let result: WriteLineItemsResult;
    try {
      refuseAsFailure(() => bill.checkOurs());
      result = await ledger.writeLineItems({ bill_id: billId, writes });
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Not reached in practice (the activity retries without limit and answers refusals as
      // outcomes). Whatever reaches here stands for the whole group, and its outcome is unknown.
      const found = refusalIn(err);
      const refusal: Refusal =
        found && found.code !== 'unavailable'
          ? { ...found, details: null }
          : { code: 'aborted', message: 'the line items could not be written; retry with the same idempotency key', details: null };
      result = { snapshot: { version: 0, totals: {} }, outcomes: writes.map(() => ({ status: 'refused', refusal })) };
    }
    const before = Object.keys(bill.totals);
    bill.settleGroup(group, result);
    showCurrencies(bill, before);
  }
}

// --- Handlers: each update's effect; the rules they check are BillState's ---
//
// Those that write wait for the bill row inline (`await condition(...)`, then checkOurs), never
// through a helper: one more await would move their activity after a CancelTimer of the same
// workflow task, and histories recorded before would no longer replay.

async function onOpenBill(bill: BillState): Promise<LiveBill> {
  // A new recurring bill answers with its period's fee already counted.
  await condition(() => bill.opened() || bill.conflict);
  if (bill.conflict) throw failureOf({ code: 'already_exists', message: `bill ${bill.bill.bill_id} already exists`, details: null });
  return bill.live();
}

async function onAppendLineItems(bill: BillState, { items }: AppendLineItemsInput): Promise<AppendLineItemsResult> {
  // The validator has just checked the group; each item is checked again as it is reserved.
  const outcomes = await bill.admit(items);
  return {
    version: bill.version,
    totals: totalsList(bill.totals),
    results: outcomes.map((o) =>
      o.status === 'refused' ? { refused: o.refusal } : { created_at: (o as { created_at: string }).created_at },
    ),
  };
}

async function onAddLineItem(bill: BillState, db: DatabaseActivities, item: AddLineItemInput): Promise<AddedLineItem> {
  const billId = bill.bill.bill_id;
  if (!patched(LEDGER_SNAPSHOTS)) {
    const { line_item } = await legacyAddOne(bill, item.currency, item.amount, async () => {
      await condition(() => bill.persisted || bill.conflict);
      refuseAsFailure(() => bill.checkOurs());
      return db.persistLineItem({ ...item, bill_id: billId });
    });
    return { line_item, totals: bill.live().totals };
  }
  const [outcome] = await bill.admit([item]);
  const { created_at } = settled(outcome) as { created_at: string };
  const { line_item_id, amount, currency, description, metadata } = item;
  return {
    line_item: { line_item_id, bill_id: billId, amount, currency, description, metadata, created_at },
    totals: totalsList(bill.totals),
  };
}

async function onAddStagedLineItems(bill: BillState, db: DatabaseActivities, ref: AddStagedLineItemsInput): Promise<AddLineItemsResult> {
  if (!patched(LEDGER_SNAPSHOTS)) {
    const { count } = await legacyAddBatch(bill, ref.totals, async () => {
      await condition(() => bill.persisted || bill.conflict);
      refuseAsFailure(() => bill.checkOurs());
      return db.persistStagedLineItems({ ...ref, bill_id: bill.bill.bill_id });
    });
    return { added: count, totals: bill.live().totals };
  }
  settled((await bill.enqueue([{ batch: ref }], ref.totals))[0]);
  return { added: ref.item_count, totals: totalsList(bill.totals), version: bill.version };
}

async function onAddLineItems(bill: BillState, db: DatabaseActivities, { items }: AddLineItemsInput): Promise<AddLineItemsResult> {
  if (!patched(LEDGER_SNAPSHOTS)) {
    const { count } = await legacyAddBatch(bill, batchTotals(items), async () => {
      await condition(() => bill.persisted || bill.conflict);
      refuseAsFailure(() => bill.checkOurs());
      return db.persistLineItems({ items, bill_id: bill.bill.bill_id });
    });
    return { added: count, totals: bill.live().totals };
  }
  // Each item its own write: a repeated id is stored, and counted, once.
  (
    await bill.enqueue(
      items.map((item) => ({ item })),
      batchTotals(items),
    )
  ).forEach(settled);
  return { added: items.length, totals: totalsList(bill.totals), version: bill.version };
}

async function onCloseBill(bill: BillState): Promise<LiveBill> {
  bill.closeRequested = true;
  await condition(() => bill.status === 'closed' || bill.conflict);
  refuseAsFailure(() => bill.checkOurs());
  return bill.live();
}

async function onCancelSeries(bill: BillState, db: DatabaseActivities, { close_now }: CancelSeriesInput): Promise<LiveBill> {
  bill.cancelled = true;
  bill.cancelling++;
  try {
    await condition(() => bill.persisted || bill.conflict);
    refuseAsFailure(() => bill.checkOurs());
    await db.cancelSeries({ bill_id: bill.bill.bill_id, at: new Date(Date.now()).toISOString() });
  } finally {
    bill.cancelling--;
  }
  if (close_now) {
    bill.closeRequested = true;
    await condition(() => bill.status === 'closed');
  }
  return bill.live();
}

function registerHandlers(bill: BillState, db: DatabaseActivities): void {
  const check = (rule: () => void) => refuseAsFailure(rule);
  setHandler(getBillQuery, () => bill.live());
  setHandler(openBillUpdate, () => onOpenBill(bill));
  setHandler(appendLineItemsUpdate, (group) => onAppendLineItems(bill, group), {
    validator: (group) => check(() => bill.checkGroup(group?.items)),
  });
  setHandler(addLineItemUpdate, (item) => onAddLineItem(bill, db, item), { validator: (item) => check(() => bill.checkItem(item)) });
  setHandler(addStagedLineItemsUpdate, (ref) => onAddStagedLineItems(bill, db, ref), {
    validator: (ref) => check(() => bill.checkStagedBatch(ref)),
  });
  setHandler(addLineItemsUpdate, (batch) => onAddLineItems(bill, db, batch), { validator: (batch) => check(() => bill.checkBatch(batch)) });
  setHandler(closeBillUpdate, () => onCloseBill(bill), { validator: () => check(() => bill.checkClose()) });
  setHandler(cancelSeriesUpdate, (req) => onCancelSeries(bill, db, req), {
    validator: (_req: CancelSeriesInput) => check(() => bill.checkCancel()),
  });
}

/** The period's recurring fee, prorated when the period is partial: once per bill. */
async function chargeRecurringFee(bill: BillState, db: DatabaseActivities): Promise<void> {
  const header = bill.bill;
  const fee = header.recurring_fee!;
  const interval = parseInterval(header.interval!) as Interval; // validated when the series was created
  const start = new Date(header.billing_period_start);
  const end = new Date(header.billing_period_end);
  const amount = prorateFee(fee.amount, start, end, interval, header.billing_anchor_day ?? 1);
  if (amount > 0) {
    const charge = {
      amount,
      currency: fee.currency,
      description: fee.description,
      metadata: {
        recurring_fee: true,
        period_start: header.billing_period_start,
        period_end: header.billing_period_end,
        full_amount: fee.amount,
      },
    };
    if (patched(LEDGER_SNAPSHOTS)) {
      const [outcome] = await bill.enqueueOne({ recurring_fee: charge }, fee.currency, amount);
      if (outcome.status === 'refused') log.error('the recurring fee was refused', { billId: header.bill_id, refusal: outcome.refusal });
    } else {
      await legacyAddOne(bill, fee.currency, amount, () => db.chargeRecurringFee({ bill_id: header.bill_id, ...charge }));
    }
  }
  bill.feeCharged = true;
}

/** The next period's bill of a series, started by the bill that ends (abandoned, like the invoice). */
async function renew(input: BillWorkflowInput, bill: BillState): Promise<void> {
  const header = input.bill;
  const interval = parseInterval(header.interval!) as Interval;
  // Periods follow each other without a gap, also when this one closed late (a worker was down).
  const start = header.billing_period_end;
  const next: BillHeader = {
    ...header,
    bill_id: uuid4(),
    billing_period_start: start,
    billing_period_end: periodEnd(new Date(start), interval, header.billing_anchor_day ?? 1).toISOString(),
    created_at: new Date(Date.now()).toISOString(),
    previous_bill_id: header.bill_id,
    request_fingerprint: `renewal of ${header.bill_id}`,
  };
  bill.nextBillId = next.bill_id;
  const shown = patched(SEARCH_ATTRIBUTES) ? { typedSearchAttributes: billSearchAttributes(next), staticSummary: billSummary(next) } : {};
  try {
    await startChild(billLifecycleWorkflow, {
      workflowId: billWorkflowId(next.bill_id),
      args: [{ bill: next, continueAsNewAfterItems: input.continueAsNewAfterItems, activitySettings: input.activitySettings }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      ...shown,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

/**
 * The bill's life: write its row, charge its fee, then wait for the end of the period or a close
 * request, continuing as new whenever the history grows long; close; start the invoice.
 */
export async function billLifecycleWorkflow(input: BillWorkflowInput): Promise<LiveBill> {
  const bill = BillState.of(input);
  const db = databaseActivities(input.activitySettings);
  const ledger = ledgerActivities(input.activitySettings);
  registerHandlers(bill, db);
  void runLedgerWriter(bill, ledger);
  // A run of a bill of the previous release (started without them) gets them at its start, and so
  // does every run after a continue-as-new, which starts without them. The summary comes with the
  // first run's start only: every run also shows it as its current details (not a command).
  if (!workflowInfo().typedSearchAttributes.get(BillStatusKey)) show(bill, () => []);
  setCurrentDetails(billSummary(input.bill));

  if (!bill.persisted) {
    // By local activity: with Update-with-Start, the row, the update's acceptance and its answer
    // travel in the first workflow task.
    const persist = patched(LEDGER_SNAPSHOTS) ? ledger.persistBill : db.persistBill;
    const outcome = await persist(input.bill);
    if (outcome === 'conflict' || outcome === 'already_closed') {
      // Not this workflow's bill to run: answer the waiting handlers and stop, running nothing twice.
      if (outcome === 'conflict') {
        bill.conflict = true;
        // The attributes describe a request for a bill that is not this one: drop them.
        if (patched(SEARCH_ATTRIBUTES))
          upsertSearchAttributes(BILL_SEARCH_ATTRIBUTES.map((key) => ({ key, value: null }) as SearchAttributeUpdatePair));
      } else {
        Object.assign(bill, { status: 'closed', persisted: true });
        showStatus(bill);
      }
      await condition(() => bill.idle() && allHandlersFinished());
      return bill.live();
    }
    bill.persisted = true;
  }
  if (input.bill.recurring_fee && !bill.feeCharged) await chargeRecurringFee(bill, db);

  const periodEnd = Date.parse(input.bill.billing_period_end);
  // Zero for bills without a grace period (and all bills of releases before it): they close at
  // the period's end exactly as before, with the same commands.
  const graceMs = gracePeriodMs(input.bill.grace_period);
  const threshold = input.continueAsNewAfterItems ?? 0;
  const capped = patched(HISTORY_CAP);
  const rollover = () => {
    const info = workflowInfo();
    return (
      info.continueAsNewSuggested ||
      (threshold > 0 && bill.itemsThisRun >= threshold) ||
      (capped && info.historyLength >= MAX_HISTORY_EVENTS)
    );
  };
  // The period, then (with a grace period) the draft: each waits for its end or a close request.
  for (;;) {
    const end = bill.status === 'draft' ? periodEnd + graceMs : periodEnd;
    const remaining = end - Date.now();
    if (remaining > 0) await condition(() => bill.closeRequested || rollover(), remaining);

    if (!bill.closeRequested && Date.now() < end) {
      // Rollover: turn new adds away (they retry into the next run) so queued and in-flight writes
      // can drain, unless a close arrives or the phase ends meanwhile.
      bill.draining = true;
      const drained = await condition(() => bill.closeRequested || (bill.idle() && allHandlersFinished()), end - Date.now());
      if (drained && !bill.closeRequested) {
        return continueAsNew<typeof billLifecycleWorkflow>({ ...input, carried: bill.carried() });
      }
      bill.draining = false;
    }
    if (bill.closeRequested || bill.status === 'draft' || graceMs === 0) break;
    await enterDraft(bill, input, db, periodEnd);
  }

  await close(bill, input, db);
  await condition(allHandlersFinished);
  return bill.live();
}

/**
 * The period has ended and a grace period follows: the bill is a draft that still takes the
 * period's late usage, with live totals, until the grace period ends or a finalize (close)
 * request. The next period's bill of a series starts now, so the periods still follow each other.
 */
async function enterDraft(bill: BillState, input: BillWorkflowInput, db: DatabaseActivities, periodEnd: number): Promise<void> {
  // The row first: a reader that sees the draft (live) also finds its drafted_at (stored).
  await db.markDraft({ bill_id: input.bill.bill_id, at: new Date(Math.max(Date.now(), periodEnd)).toISOString() });
  bill.status = 'draft';
  showStatus(bill);
  if (input.bill.interval && !bill.cancelled) await renew(input, bill);
}

async function close(bill: BillState, input: BillWorkflowInput, db: DatabaseActivities): Promise<void> {
  const billId = input.bill.bill_id;
  const waitsForCancel = patched(CLOSE_AFTER_CANCEL);
  bill.status = 'closing';
  showStatus(bill);
  // A cancel accepted before the close writes to the bill row first (the database refuses any
  // change to a closed bill since migration 9). Histories from before this wait replay without it.
  await condition(() => bill.idle() && (bill.cancelling === 0 || !waitsForCancel));
  const stored = await db.closeBill({ bill_id: billId, closed_at: new Date(Date.now()).toISOString() });
  if (!sameTotals(stored.totals, bill.totals)) {
    // Postgres is the system of record; a mismatch means a write committed that no snapshot
    // brought back (or a bug): worth an alert, never a wrong invoice.
    if (patched(REPORT_TOTALS_MISMATCH)) {
      await db.reportTotalsMismatch({ bill_id: billId, live: bill.totals, stored: stored.totals });
    } else {
      log.error('live totals differ from stored line items; using stored', { billId, live: bill.totals, stored: stored.totals });
    }
  }
  bill.closedWith(stored);
  const shown = patched(SEARCH_ATTRIBUTES)
    ? { typedSearchAttributes: [{ key: InvoiceStatusKey, value: 'pending' }], staticSummary: postProcessSummary(billId) }
    : {};
  try {
    await startChild(closedBillPostProcessWorkflow, {
      workflowId: postProcessWorkflowId(billId),
      args: [{ bill_id: billId }],
      // The invoice must not depend on this workflow staying around, nor delay its completion.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      ...shown,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  // A draft's series renewed when its period ended.
  if (input.bill.interval && !bill.cancelled && bill.nextBillId === null) await renew(input, bill);
  bill.status = 'closed';
  showStatus(bill);
}
