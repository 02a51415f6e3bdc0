/** The in-memory state of one bill workflow run, and the pure operations on it. */
import { totalsList, type TotalsByCurrency } from '../../core/money';
import type { BillStatus } from '../../bills/types';
import type { LedgerSnapshot } from '../../lineitems/types';
import type { BillWorkflowInput, LedgerWrite, LiveBill, WriteOutcome } from '../shared';

/** The writes of one update waiting for the ledger writer, with the amounts they reserved. */
export interface QueuedWrite {
  writes: LedgerWrite[];
  reserved: TotalsByCurrency;
  settle: (outcomes: WriteOutcome[]) => void;
}

export interface BillState {
  status: BillStatus;
  currency: string | null;
  /**
   * The ledger as the newest snapshot left it: Postgres counts, the workflow mirrors. A snapshot
   * is adopted only when its version is higher, so late or repeated answers never move it back.
   */
  version: number;
  totals: TotalsByCurrency;
  /** Amounts of writes not yet committed, reserved so that concurrent adds cannot overflow a total. */
  pending: TotalsByCurrency;
  /** Writes waiting for the ledger writer; everything queued while a write is in flight goes next, together. */
  queue: QueuedWrite[];
  writing: boolean;
  /** A write of the previous release's path completed after a snapshot: read the ledger again. */
  refresh: boolean;
  /** Adds on the previous release's path in flight (bills running since before migration 7). */
  legacyInflight: number;
  /** Cancels accepted whose write to the bill row is still in flight. */
  cancelling: number;
  itemsThisRun: number;
  persisted: boolean;
  conflict: boolean;
  /** Draining in-flight adds before continuing as new; new adds are asked to retry meanwhile. */
  draining: boolean;
  closeRequested: boolean;
  closedAt: string | null;
  continuedAsNew: number;
  feeCharged: boolean;
  cancelled: boolean;
  /** Set once the next period's bill is being started: from then on the series cannot be cancelled here. */
  nextBillId: string | null;
}

export function initialState(input: BillWorkflowInput): BillState {
  return {
    status: 'open',
    currency: input.bill.currency,
    version: input.carried?.version ?? 0,
    totals: input.carried?.totals ?? {},
    pending: {},
    queue: [],
    writing: false,
    refresh: false,
    legacyInflight: 0,
    cancelling: 0,
    itemsThisRun: 0,
    persisted: input.carried !== undefined,
    conflict: false,
    draining: false,
    closeRequested: false,
    closedAt: null,
    continuedAsNew: input.carried?.continuedAsNew ?? 0,
    feeCharged: input.carried?.feeCharged ?? false,
    cancelled: input.carried?.cancelled ?? false,
    nextBillId: null,
  };
}

/** Takes the ledger's snapshot if it is newer than what the workflow holds. */
export function adopt(state: BillState, snapshot: LedgerSnapshot): void {
  if (snapshot.version > state.version) {
    state.version = snapshot.version;
    state.totals = snapshot.totals;
  }
}

/** No write queued or in flight. */
export function idle(state: BillState): boolean {
  return state.queue.length === 0 && !state.writing && !state.refresh && state.legacyInflight === 0;
}

/** Adds `sign * amount` (and `sign` items) to one currency's entry; drops entries that reach zero items. */
export function adjust(totals: TotalsByCurrency, currency: string, amount: number, sign: 1 | -1): void {
  addTotals(totals, currency, sign * amount, sign);
}

/** Adds `amount` over `count` items (negative to take them back) to one currency's entry. */
export function addTotals(totals: TotalsByCurrency, currency: string, amount: number, count: number): void {
  const entry = totals[currency] ?? { amount: 0, count: 0 };
  entry.amount += amount;
  entry.count += count;
  if (entry.count === 0) delete totals[currency];
  else totals[currency] = entry;
}

/** Adds (sign 1) or takes back (sign -1) every currency of `amounts`. */
export function addAll(totals: TotalsByCurrency, amounts: TotalsByCurrency, sign: 1 | -1): void {
  for (const [currency, t] of Object.entries(amounts)) addTotals(totals, currency, sign * t.amount, sign * t.count);
}

export function lineItemCount(totals: TotalsByCurrency): number {
  return Object.values(totals).reduce((n, t) => n + t.count, 0);
}

export function liveBill(state: BillState): LiveBill {
  return {
    status: state.status,
    version: state.version,
    totals: totalsList(state.totals),
    line_item_count: lineItemCount(state.totals),
    closed_at: state.closedAt,
    continued_as_new: state.continuedAsNew,
  };
}
