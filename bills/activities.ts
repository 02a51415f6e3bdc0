/**
 * The bill's activities: one database effect each, keyed so that a retry (or a duplicate update
 * after continue-as-new) changes nothing. They are thin on purpose; the SQL lives in the stores.
 */
import { activityLogContext, currentSourceRef } from '../core/activity-context';
import { recordAudit, SYSTEM } from '../core/audit';
import { inTransaction, type Db } from '../core/db';
import { databaseRefusal } from '../core/errors';
import type { Logger } from '../core/log';
import { billsClosed, billsOpened, closeTotalsMismatches } from '../core/metrics';
import type { TotalsByCurrency } from '../core/money';
import type { Refusal } from '../core/refusals';
import { lineItemId } from './line-item-ids';
import { rateAtClose } from './usage-lines';
import { BILL_CLOSED_SQLSTATE, BILL_MISSING_SQLSTATE, appendLineItems, ledgerSnapshot, type LedgerItem } from './line-item-store';
import type { LedgerSnapshot, StagedBatchRef } from './types';
import type { LedgerWrite, WriteLineItemsInput, WriteLineItemsResult, WriteOutcome } from './messages';
import { emitEvent } from '../webhooks/events';
import { newBillRow, toBill } from './resource';
import { findBill, insertBill, markClosed, markSeriesCancelled, type InsertBillOutcome, markDrafted } from './store';
import type { BillHeader } from './types';

/** The idempotency key of a bill's recurring fee: a newline, which no client key may contain. */
const RECURRING_FEE_KEY = '\nrecurring-fee';

const refused = (refusal: Refusal): WriteOutcome => ({ status: 'refused', refusal });
const closedRefusal: Refusal = {
  code: 'failed_precondition',
  message: 'bill is closed: it accepts no more line items',
  details: { status: 'closed' },
};

/** Postgres refused the data itself (see databaseRefusal): the same write would be refused on every retry. */
function refusalOfData(err: unknown): Refusal | null {
  const e = databaseRefusal(err);
  return e && { code: e.code, message: e.message, details: e.details };
}

/** The writes of a group as the store takes them: items (the fee with its derived id) and batches, and where each went. */
function splitWrites(billId: string, writes: LedgerWrite[]) {
  const items: LedgerItem[] = [];
  const batches: StagedBatchRef[] = [];
  const slots = writes.map((w) => {
    if ('batch' in w) return { batch: batches.push(w.batch) - 1 };
    const item = 'item' in w ? w.item : { ...w.recurring_fee, line_item_id: lineItemId(billId, RECURRING_FEE_KEY) };
    return { item: items.push(item) - 1, fee: 'recurring_fee' in w };
  });
  return { items, batches, slots };
}

export interface BillActivityDeps {
  db: Db;
  log: Logger;
}

export function createBillActivities({ db, log }: BillActivityDeps) {
  /** One group in one transaction; what became of each write, in order, and the snapshot it left. */
  async function writeGroup(billId: string, writes: LedgerWrite[], sourceRef: string): Promise<WriteLineItemsResult> {
    const { items, batches, slots } = splitWrites(billId, writes);
    const written = await appendLineItems(db, billId, items, batches, sourceRef);
    const outcomes = slots.map((slot): WriteOutcome => {
      if ('batch' in slot) {
        const b = written.batches[slot.batch!];
        if (b.status === 'applied') return { status: 'applied' };
        if (b.status === 'missing')
          return refused({ code: 'failed_precondition', message: `batch ${b.batch_id} is not staged for this bill`, details: null });
        return refused({
          code: 'invalid_argument',
          message: 'the staged batch does not match its declared sums',
          details: { field: 'items' },
        });
      }
      const i = written.items[slot.item!];
      // The period's fee is charged once, whatever a first attempt stored for it.
      if (i.same || slot.fee) return { status: 'stored', created_at: i.created_at };
      return refused({
        code: 'invalid_argument',
        message: 'this idempotency key was already used for a different line item',
        details: { field: 'idempotency_key' },
      });
    });
    return { snapshot: written.snapshot, outcomes };
  }

  /** Refusals that stand for a whole group: a closed or missing bill, answered with the ledger as it is. */
  async function refuseGroup(billId: string, writes: LedgerWrite[], refusal: Refusal): Promise<WriteLineItemsResult> {
    const snapshot: LedgerSnapshot = (await ledgerSnapshot(db, billId)) ?? { version: 0, totals: {} };
    return { snapshot, outcomes: writes.map(() => refused(refusal)) };
  }

  const activities = {
    /**
     * A group of line-item writes for one bill, run as a local activity from its workflow: one
     * transaction, one position reservation, one snapshot. Idempotent by line item and batch id, so
     * any retry, resent update or late duplicate converges on the same rows; the snapshot it returns
     * is the ledger's, never a sum the workflow keeps. Only a passing outage throws (and retries).
     */
    async writeLineItems(input: WriteLineItemsInput): Promise<WriteLineItemsResult> {
      const { bill_id: billId, writes } = input;
      const sourceRef = currentSourceRef();
      try {
        return await writeGroup(billId, writes, sourceRef);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === BILL_CLOSED_SQLSTATE) return refuseGroup(billId, writes, closedRefusal);
        if (code === BILL_MISSING_SQLSTATE)
          return refuseGroup(billId, writes, { code: 'not_found', message: `bill ${billId} not found`, details: { bill_id: billId } });
        const refusal = refusalOfData(err);
        if (!refusal) throw err;
        if (writes.length === 1) return refuseGroup(billId, writes, refusal);
        // Which write the database refused is not said: each again on its own, so one bad write
        // refuses only itself.
        const outcomes: WriteOutcome[] = [];
        let snapshot: LedgerSnapshot = { version: 0, totals: {} };
        for (const w of writes) {
          const r = await activities.writeLineItems({ bill_id: billId, writes: [w] });
          outcomes.push(r.outcomes[0]);
          if (r.snapshot.version >= snapshot.version) snapshot = r.snapshot;
        }
        return { snapshot, outcomes };
      }
    },

    /** Stores the bill's row with its events (bill.created, and bill.renewed for a series' next bill). */
    async persistBill(bill: BillHeader): Promise<InsertBillOutcome> {
      const data = toBill(newBillRow(bill), null);
      const events = [{ type: 'bill.created' as const, data }, ...(bill.previous_bill_id ? [{ type: 'bill.renewed' as const, data }] : [])];
      const outcome = await insertBill(db, bill, events);
      if (outcome === 'created') billsOpened.inc();
      return outcome;
    },

    /** The period has ended: the bill is a draft until its grace period ends (bill.drafted, once). */
    async markDraft(input: { bill_id: string; at: string }): Promise<void> {
      await inTransaction(db, async (tx) => {
        if (await markDrafted(tx, input.bill_id, input.at))
          await emitEvent(tx, 'bill.drafted', toBill((await findBill(tx, input.bill_id))!, null));
      });
    },

    /** Marks the bill's series cancelled: it will not renew. */
    async cancelSeries(input: { bill_id: string; at: string; actor?: string }): Promise<string | null> {
      const outcome = await inTransaction(db, async (tx) => {
        const marked = await markSeriesCancelled(tx, input.bill_id, input.at);
        if (marked && 'newly' in marked && marked.newly) {
          const actor = input.actor ?? 'unknown';
          await emitEvent(tx, 'series.cancelled', toBill((await findBill(tx, input.bill_id))!, null), { actor });
          await recordAudit(tx, { bill_id: input.bill_id, subject: 'bill', subject_id: input.bill_id, action: 'series cancelled', actor });
        }
        return marked;
      });
      if (outcome === null) throw new Error(`bill ${input.bill_id} does not exist`);
      // Closed first (a repeated cancel of a cancelled bill, accepted while it was closing): too
      // late, and retrying would never change that.
      if ('closed' in outcome)
        log.warn(
          { event: 'cancel_after_close', bill_id: input.bill_id, ...activityLogContext() },
          'the bill closed before its cancel was written',
        );
      return outcome.cancelled_at;
    },

    /** Marks the bill closed in Postgres and answers its final totals (the activity keeps its recorded name). */
    async closeBill(input: {
      bill_id: string;
      closed_at: string;
      /** Who asked; absent when its period's end closed it. */
      closed_by?: string;
    }): Promise<{ closed_at: string; totals: TotalsByCurrency; version: number; rated?: TotalsByCurrency }> {
      const { closed_now, ...closed } = await inTransaction(db, async (tx) => {
        // Usage first, in this transaction: the lines its prices make are on the closed bill.
        const rated = await rateAtClose(tx, input.bill_id, currentSourceRef());
        const marked = await markClosed(tx, input.bill_id, input.closed_at);
        // The event carries the final bill, written in the transaction that closes it.
        if (marked.closed_now) {
          await emitEvent(tx, 'bill.closed', toBill((await findBill(tx, input.bill_id))!, null), { actor: input.closed_by ?? SYSTEM });
          await recordAudit(tx, {
            bill_id: input.bill_id,
            subject: 'bill',
            subject_id: input.bill_id,
            action: input.closed_by ? 'closed on request' : 'closed at the end of its period',
            actor: input.closed_by ?? SYSTEM,
            data: { totals: marked.totals },
          });
        }
        return rated ? { ...marked, rated } : marked;
      });
      if (closed_now) billsClosed.inc();
      return closed;
    },

    /**
     * A bill closed with live totals other than its stored line items. The stored ones were used;
     * this is the alert: one error line and a counter, from the worker rather than workflow code.
     */
    async reportTotalsMismatch(input: { bill_id: string; live: TotalsByCurrency; stored: TotalsByCurrency }): Promise<void> {
      closeTotalsMismatches.inc();
      log.error(
        { event: 'totals_mismatch', bill_id: input.bill_id, live: input.live, stored: input.stored, ...activityLogContext() },
        'live totals differed from the stored line items at close; the stored totals were used',
      );
    },
  };
  return activities;
}

export type BillActivities = ReturnType<typeof createBillActivities>;
