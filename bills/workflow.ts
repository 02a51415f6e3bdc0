/**
 * One workflow per bill, from creation to close. Changes arrive as updates (the caller gets a
 * confirmed result, and validators reject bad input before it reaches history); reads are queries.
 * The rules live in BillState; the writes in ledger-writer.ts; this file wires handlers to them and
 * runs the bill's one loop: wait for the end of the period (or of its grace period) or a close
 * request, continuing as new whenever the history grows long; then close and start the invoice.
 */
import {
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  makeContinueAsNewFunc,
  patched,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError, type SearchAttributeUpdatePair } from '@temporalio/common';
import { addTotals, sameTotals, totalsList } from '../core/money';
import { failureOf, refuseAsFailure } from '../core/refusals';
import { InvoiceStatusKey, postProcessSummary, postProcessWorkflowId } from '../invoices/messages';
import { closedBillPostProcessWorkflow } from '../invoices/workflow';
import { BillState } from './bill-state';
import {
  databaseActivities,
  ledgerActivities,
  runLedgerWriter,
  settled,
  type DatabaseActivities,
  type LedgerActivities,
} from './ledger-writer';
import * as m from './messages';
import { gracePeriodMs } from './periods';
import { BILL_SEARCH_ATTRIBUTES, BillCurrenciesKey, BillStatusKey, billSearchAttributes, billSummary } from './search-attributes';
import { chargeRecurringFee, nextPeriod } from './series';

/**
 * Runs continue as new before their history passes this many events, so a bill the worker evicted
 * from its cache replays in a second or two when next needed. Without it, a bill of a million items
 * ran to 4,000 events in one run and missed a reconciliation sweep's 10 s query deadline.
 */
const MAX_HISTORY_EVENTS = 2_000;

const check = (rule: () => void) => refuseAsFailure(rule);
const showStatus = (bill: BillState) => upsertSearchAttributes([{ key: BillStatusKey, value: bill.status }]);

/** A currency the bill did not hold before: the list grows (a bill restricted to one has it from the start). */
function showCurrencies(bill: BillState, before: string[]): void {
  const now = Object.keys(bill.totals).sort();
  if (!bill.currency && !now.every((c) => before.includes(c))) upsertSearchAttributes([{ key: BillCurrenciesKey, value: now }]);
}

/** Starts a child that outlives this workflow (the invoice, the next period) once, whatever a retry does. */
async function startOnce(start: () => Promise<unknown>): Promise<void> {
  try {
    await start();
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

function wireHandlers(bill: BillState, db: DatabaseActivities): void {
  setHandler(m.getBillQuery, () => bill.live());
  setHandler(m.openBillUpdate, async () => {
    // A new recurring bill answers with its period's fee already counted.
    await condition(() => bill.opened() || bill.conflict);
    if (bill.conflict) throw failureOf({ code: 'already_exists', message: `bill ${bill.bill.bill_id} already exists`, details: null });
    return bill.live();
  });
  setHandler(m.appendLineItemsUpdate, (group) => appendLineItems(bill, group), {
    validator: (g) => check(() => bill.checkGroup(g?.items)),
  });
  setHandler(m.addStagedLineItemsUpdate, (ref) => addStagedBatch(bill, ref), {
    validator: (ref) => check(() => bill.checkStagedBatch(ref)),
  });
  // 1.0.0 clients sent no input.
  setHandler(m.closeBillUpdate, (req?: m.CloseBillInput) => closeOnRequest(bill, req?.actor), {
    validator: (_req?: m.CloseBillInput) => check(() => bill.checkClose()),
  });
  setHandler(m.cancelSeriesUpdate, (req) => cancelSeries(bill, db, req), {
    validator: (_req: m.CancelSeriesInput) => check(() => bill.checkCancel()),
  });
}

async function appendLineItems(bill: BillState, { items }: m.AppendLineItemsInput): Promise<m.AppendLineItemsResult> {
  // The validator has just checked the group; each item is checked again as it is reserved.
  const outcomes = await bill.admit(items);
  const results = outcomes.map((o) =>
    o.status === 'refused' ? { refused: o.refusal } : { created_at: (o as { created_at: string }).created_at },
  );
  return { version: bill.version, totals: totalsList(bill.totals), results };
}

async function addStagedBatch(bill: BillState, ref: m.AddStagedLineItemsInput): Promise<m.AddLineItemsResult> {
  settled((await bill.enqueue([{ batch: ref }], ref.totals))[0]);
  return { added: ref.item_count, totals: totalsList(bill.totals), version: bill.version };
}

async function closeOnRequest(bill: BillState, actor: string | undefined): Promise<m.LiveBill> {
  bill.closeRequested = true;
  bill.closedBy ??= actor ?? null;
  await condition(() => bill.status === 'closed' || bill.conflict);
  check(() => bill.checkOurs());
  return bill.live();
}

async function cancelSeries(bill: BillState, db: DatabaseActivities, { close_now, actor }: m.CancelSeriesInput): Promise<m.LiveBill> {
  bill.cancelled = true;
  bill.cancelling++;
  try {
    await condition(() => bill.persisted || bill.conflict);
    check(() => bill.checkOurs());
    await db.cancelSeries({ bill_id: bill.bill.bill_id, at: new Date(Date.now()).toISOString(), ...(actor ? { actor } : {}) });
  } finally {
    bill.cancelling--;
  }
  if (close_now) {
    bill.closeRequested = true;
    bill.closedBy ??= actor ?? null;
    await condition(() => bill.status === 'closed');
  }
  return bill.live();
}

/** The next run of this bill, with this run's workflow task timeout (a start option, not carried otherwise). */
const continueAsNext = (input: m.BillWorkflowInput) =>
  makeContinueAsNewFunc<typeof billLifecycleWorkflow>({ workflowTaskTimeout: workflowInfo().taskTimeoutMs })(input);

/** The bill's life: its row, its fee, the wait for its end, the close. */
export async function billLifecycleWorkflow(input: m.BillWorkflowInput): Promise<m.LiveBill> {
  const bill = BillState.of(input);
  const db = databaseActivities(input.activitySettings);
  const ledger = ledgerActivities(input.activitySettings);
  wireHandlers(bill, db);
  void runLedgerWriter(bill, ledger, (before) => showCurrencies(bill, before));
  // A run that continued as new may start without the search attributes; the summary comes with
  // the first run's start only, so every run shows it as its current details (not a command).
  if (!workflowInfo().typedSearchAttributes.get(BillStatusKey))
    upsertSearchAttributes(billSearchAttributes(bill.bill, bill.status, Object.keys(bill.totals), customerPrivate(input)));
  setCurrentDetails(billSummary(input.bill));

  if (!bill.persisted && !(await persist(bill, ledger))) {
    // Not this workflow's bill to run: answer the waiting handlers and stop, running nothing twice.
    await condition(() => bill.idle() && allHandlersFinished());
    return bill.live();
  }
  if (input.bill.recurring_fee && !bill.feeCharged) await chargeRecurringFee(bill);

  const periodEnd = Date.parse(input.bill.billing_period_end);
  const graceMs = gracePeriodMs(input.bill.grace_period);
  const threshold = input.continueAsNewAfterItems ?? 0;
  const rollover = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || (threshold > 0 && bill.itemsThisRun >= threshold) || info.historyLength >= MAX_HISTORY_EVENTS;
  };
  // The period, then (with a grace period) the draft: each waits for its end or a close request.
  for (;;) {
    const end = bill.status === 'draft' ? periodEnd + graceMs : periodEnd;
    if (end > Date.now()) await condition(() => bill.closeRequested || rollover(), end - Date.now());
    if (!bill.closeRequested && Date.now() < end) {
      // Rollover: turn new adds away (they retry into the next run) so queued and in-flight writes
      // can drain, unless a close arrives or the phase ends meanwhile.
      bill.draining = true;
      const drained = await condition(() => bill.closeRequested || (bill.idle() && allHandlersFinished()), end - Date.now());
      if (drained && !bill.closeRequested) return continueAsNext({ ...input, carried: bill.carried() });
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
 * Writes the bill's row by local activity: with Update-with-Start, the row, the update's acceptance
 * and its answer travel in the first workflow task. False when the id is another bill's, or the
 * bill closed long ago (its history expired and a create reached a new workflow).
 */
async function persist(bill: BillState, ledger: LedgerActivities): Promise<boolean> {
  const outcome = await ledger.persistBill(bill.bill);
  if (outcome === 'conflict') {
    bill.conflict = true;
    // The attributes describe a request for a bill that is not this one: drop them.
    upsertSearchAttributes(BILL_SEARCH_ATTRIBUTES.map((key) => ({ key, value: null }) as SearchAttributeUpdatePair));
    return false;
  }
  bill.persisted = true;
  if (outcome === 'already_closed') {
    bill.status = 'closed';
    showStatus(bill);
    return false;
  }
  return true;
}

/**
 * The period has ended and a grace period follows: the bill is a draft that still takes the
 * period's late usage, with live totals, until the grace period ends or a finalize (close)
 * request. The next period's bill of a series starts now, so the periods still follow each other.
 */
async function enterDraft(bill: BillState, input: m.BillWorkflowInput, db: DatabaseActivities, periodEnd: number): Promise<void> {
  // The row first: a reader that sees the draft (live) also finds its drafted_at (stored).
  await db.markDraft({ bill_id: input.bill.bill_id, at: new Date(Math.max(Date.now(), periodEnd)).toISOString() });
  bill.status = 'draft';
  showStatus(bill);
  if (input.bill.interval && !bill.cancelled) await renew(bill, input);
}

/**
 * A bill created with payload encryption on keeps its customer's email out of its search
 * attributes (plaintext in Temporal). Added after 1.0.0, whose bills have no such input: patched.
 */
// patch private-customer-attribute: 1.1.0; deprecated in 1.2.0
const customerPrivate = (input: m.BillWorkflowInput) => input.customerPrivate === true && patched('private-customer-attribute');

async function renew(bill: BillState, input: m.BillWorkflowInput): Promise<void> {
  const next = nextPeriod(input);
  bill.nextBillId = next.bill.bill_id;
  await startOnce(() =>
    startChild(billLifecycleWorkflow, {
      workflowId: m.billWorkflowId(next.bill.bill_id),
      args: [next],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowTaskTimeout: workflowInfo().taskTimeoutMs,
      typedSearchAttributes: billSearchAttributes(next.bill, 'open', [], customerPrivate(next)),
      staticSummary: billSummary(next.bill),
    }),
  );
}

async function close(bill: BillState, input: m.BillWorkflowInput, db: DatabaseActivities): Promise<void> {
  const billId = input.bill.bill_id;
  bill.status = 'closing';
  showStatus(bill);
  // A cancel accepted before the close writes to the bill row first: the database refuses any
  // change to a closed bill.
  await condition(() => bill.idle() && bill.cancelling === 0);
  const closedBy = bill.closedBy ? { closed_by: bill.closedBy } : {};
  const stored = await db.closeBill({ bill_id: billId, closed_at: new Date(Date.now()).toISOString(), ...closedBy });
  // Postgres is the system of record; a mismatch means a write committed that no snapshot brought
  // back (or a bug): worth an alert, never a wrong invoice.
  // The close rated the bill's usage into lines of its own (1.0.0's closes never do): they are
  // expected beside the live totals.
  const expected = stored.rated ? addTotals(bill.totals, stored.rated) : bill.totals;
  if (!sameTotals(stored.totals, expected)) await db.reportTotalsMismatch({ bill_id: billId, live: expected, stored: stored.totals });
  bill.closedWith(stored);
  // The invoice must not depend on this workflow staying around, nor delay its completion.
  await startOnce(() =>
    startChild(closedBillPostProcessWorkflow, {
      workflowId: postProcessWorkflowId(billId),
      args: [{ bill_id: billId }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowTaskTimeout: workflowInfo().taskTimeoutMs,
      typedSearchAttributes: [{ key: InvoiceStatusKey, value: 'pending' }],
      staticSummary: postProcessSummary(billId),
    }),
  );
  // A draft's series renewed when its period ended.
  if (input.bill.interval && !bill.cancelled && bill.nextBillId === null) await renew(bill, input);
  bill.status = 'closed';
  showStatus(bill);
}
