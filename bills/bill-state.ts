/**
 * One bill workflow run's state and the rules on it, as an entity: what may be added (validate),
 * what is reserved while a write is in flight (reserve), what the ledger says (apply a snapshot),
 * and what closing and continuing as new carry. No Temporal import: the workflow wires these to
 * its handlers, and the rules are unit-tested without a server (tests/unit/bill-state.test.ts).
 */
import { AppError } from '../core/errors';
import { totalsList, type TotalsByCurrency } from '../core/money';
import { refusalOf, type Refusal } from '../core/refusals';
import type { LedgerSnapshot } from './types';
import { checkLineItemFitsBill, checkLineItemValues, checkStagedBatchFitsBill } from './line-item-rules';
import {
  MAX_GROUP_ITEMS,
  type AddLineItemInput,
  type BillWorkflowInput,
  type CarriedState,
  type LedgerWrite,
  type LiveBill,
  type WriteLineItemsResult,
  type WriteOutcome,
} from './messages';
import type { BillHeader, BillStatus } from './types';

/** The writes of one update waiting for the ledger writer, with the amounts they reserved. */
export interface QueuedWrite {
  writes: LedgerWrite[];
  reserved: TotalsByCurrency;
  settle: (outcomes: WriteOutcome[]) => void;
}

/** Writes (items or staged batches) in one transaction of the writer. */
export const MAX_WRITES_PER_TRANSACTION = 1000;

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

const one = (currency: string, amount: number): TotalsByCurrency => ({ [currency]: { amount, count: 1 } });

const retryLater = () => new AppError('unavailable', 'the bill is moving to a new workflow run; retry');

export class BillState {
  status: BillStatus = 'open';
  readonly currency: string | null;
  /**
   * The ledger as the newest snapshot left it: Postgres counts, the workflow mirrors. A snapshot
   * is adopted only when its version is higher, so late or repeated answers never move it back.
   */
  version: number;
  totals: TotalsByCurrency;
  /** Amounts of writes not yet committed, reserved so that concurrent adds cannot overflow a total. */
  pending: TotalsByCurrency = {};
  /** Writes waiting for the ledger writer; everything queued while a write is in flight goes next, together. */
  queue: QueuedWrite[] = [];
  writing = false;
  /** Cancels accepted whose write to the bill row is still in flight. */
  cancelling = 0;
  itemsThisRun = 0;
  persisted: boolean;
  /** The bill id belongs to another bill: nothing may be added to or closed on it. */
  conflict = false;
  /** Draining in-flight adds before continuing as new; new adds are asked to retry meanwhile. */
  draining = false;
  closeRequested = false;
  /** Who asked for the close (null: its period's end closes it, `system`). */
  closedBy: string | null = null;
  closedAt: string | null = null;
  continuedAsNew: number;
  feeCharged: boolean;
  cancelled: boolean;
  /** Set once the next period's bill is being started: from then on the series cannot be cancelled here. */
  nextBillId: string | null = null;

  constructor(
    readonly bill: BillHeader,
    carried?: CarriedState,
  ) {
    this.currency = bill.currency;
    this.version = carried?.version ?? 0;
    this.totals = carried?.totals ?? {};
    this.persisted = carried !== undefined;
    this.continuedAsNew = carried?.continuedAsNew ?? 0;
    this.feeCharged = carried?.feeCharged ?? false;
    this.cancelled = carried?.cancelled ?? false;
    if (carried?.drafted) this.status = 'draft';
    this.nextBillId = carried?.nextBillId ?? null;
  }

  static of(input: BillWorkflowInput): BillState {
    return new BillState(input.bill, input.carried);
  }

  // --- Reads ---

  live(): LiveBill {
    return {
      status: this.status,
      version: this.version,
      totals: totalsList(this.totals),
      line_item_count: lineItemCount(this.totals),
      closed_at: this.closedAt,
      continued_as_new: this.continuedAsNew,
    };
  }

  /** No write queued or in flight. */
  idle(): boolean {
    return this.queue.length === 0 && !this.writing;
  }

  /** openBillUpdate may answer: the row is written and a new recurring bill's fee is counted. */
  opened(): boolean {
    return this.persisted && (this.feeCharged || !this.bill.recurring_fee || this.status === 'closed');
  }

  /** What the next run starts from when this one continues as new. */
  carried(): CarriedState {
    return {
      version: this.version,
      totals: this.totals,
      lineItemCount: lineItemCount(this.totals),
      continuedAsNew: this.continuedAsNew + 1,
      feeCharged: this.feeCharged,
      cancelled: this.cancelled,
      drafted: this.status === 'draft',
      nextBillId: this.nextBillId,
    };
  }

  // --- Validate: the rules an update meets before it reaches history ---

  /** The id belongs to another bill (see persistBill). */
  checkOurs(): void {
    if (this.conflict) throw new AppError('failed_precondition', `bill ${this.bill.bill_id} is not open`);
  }

  /** A group of adds: refused whole only when no item of it could be stored for the same reason. */
  checkGroup(items: unknown): void {
    this.checkOurs();
    if (this.draining) throw retryLater();
    if (
      !Array.isArray(items) ||
      items.length === 0 ||
      items.length > MAX_GROUP_ITEMS ||
      items.some((i: { line_item_id?: unknown }) => typeof i?.line_item_id !== 'string')
    ) {
      throw new AppError('invalid_argument', `1 to ${MAX_GROUP_ITEMS} items with line_item_id are required`);
    }
    const trial = { status: this.status, currency: this.currency, totals: this.totals, pending: {} as TotalsByCurrency };
    addAll(trial.pending, this.pending, 1);
    const refusals: Refusal[] = [];
    for (const input of items) {
      const refusal = refusalOf(() => {
        const item = input as AddLineItemInput;
        checkLineItemValues(item);
        checkLineItemFitsBill(item, trial);
        addAll(trial.pending, one(item.currency, item.amount), 1);
      });
      if (!refusal) return;
      refusals.push(refusal);
    }
    const [first] = refusals;
    if (refusals.every((r) => r.code === first.code && r.message === first.message))
      throw new AppError(first.code, first.message, first.details);
  }

  /** A staged batch by its reference and declared sums. */
  checkStagedBatch(ref: Parameters<typeof checkStagedBatchFitsBill>[0]): void {
    this.checkOurs();
    if (this.draining) throw retryLater();
    checkStagedBatchFitsBill(ref, this);
  }

  /** Like a subscription: a recurring bill's periods are the policy; ending one early is a cancellation. */
  checkClose(): void {
    this.checkOurs();
    if (this.bill.interval && !this.cancelled && this.status === 'open') {
      throw new AppError(
        'failed_precondition',
        'a recurring bill closes at the end of its period; to end the series now, cancel it with close_now',
        {
          policy: this.bill.policy,
        },
      );
    }
  }

  checkCancel(): void {
    this.checkOurs();
    const billId = this.bill.bill_id;
    if (!this.bill.interval)
      throw new AppError('failed_precondition', 'only a recurring bill has a series to cancel; close this one instead');
    if (this.status === 'closed' && !this.cancelled && this.nextBillId === null) {
      throw new AppError('failed_precondition', `bill ${billId} is closed`, { status: 'closed' });
    }
    if (this.nextBillId !== null) {
      throw new AppError('failed_precondition', `bill ${billId} has ended; its series continues with bill ${this.nextBillId}`, {
        status: this.status,
        next_bill_id: this.nextBillId,
      });
    }
    // A bill whose close has begun changes no more; a cancelled one may hear its cancel again.
    if (this.status !== 'open' && !this.cancelled) {
      throw new AppError('failed_precondition', `bill ${billId} is ${this.status}`, { status: this.status });
    }
  }

  // --- Reserve: writes wait for the ledger writer with their amounts held ---

  /**
   * Queues an update's writes for the ledger writer; their amounts stay reserved until they commit.
   * One promise per update, however many items: the SDK records a stack trace for every promise a
   * workflow creates, which was a fifth of the workflow thread's time in the add profile.
   */
  enqueue(writes: LedgerWrite[], reserved: TotalsByCurrency, alreadyReserved = false): Promise<WriteOutcome[]> {
    if (!alreadyReserved) addAll(this.pending, reserved, 1);
    return new Promise((settle) => this.queue.push({ writes, reserved, settle }));
  }

  /** Queues one item of the bill's own (the recurring fee), reserved like any add. */
  enqueueOne(write: LedgerWrite, currency: string, amount: number): Promise<WriteOutcome[]> {
    return this.enqueue([write], one(currency, amount));
  }

  /**
   * Items checked against the bill as it stands, each with the reservations of those before it, and
   * the admitted ones queued as one write group. Outcomes in input order.
   */
  async admit(inputs: AddLineItemInput[]): Promise<WriteOutcome[]> {
    const outcomes: (WriteOutcome | null)[] = [];
    const writes: LedgerWrite[] = [];
    const reserved: TotalsByCurrency = {};
    for (const input of inputs) {
      const refusal = refusalOf(() => {
        checkLineItemValues(input);
        checkLineItemFitsBill(input, this);
      });
      if (refusal) {
        outcomes.push({ status: 'refused', refusal });
      } else {
        outcomes.push(null);
        writes.push({ item: input });
        // Reserved at once: the next item of the group is checked with this one counted.
        addAll(this.pending, one(input.currency, input.amount), 1);
        addAll(reserved, one(input.currency, input.amount), 1);
      }
    }
    if (writes.length === 0) return outcomes as WriteOutcome[];
    const written = await this.enqueue(writes, reserved, true);
    let next = 0;
    return outcomes.map((o) => o ?? written[next++]);
  }

  /** The writer may take the queue: something is queued (or a refresh asked for) and the row is settled. */
  hasWork(): boolean {
    return this.queue.length > 0 && (this.persisted || this.conflict);
  }

  /** The next group for the writer: everything queued, up to a transaction's worth of writes. */
  takeGroup(): QueuedWrite[] {
    let n = 0;
    let size = 0;
    while (n < this.queue.length && (n === 0 || size + this.queue[n].writes.length <= MAX_WRITES_PER_TRANSACTION))
      size += this.queue[n++].writes.length;
    this.writing = true;
    return this.queue.splice(0, n);
  }

  // --- Apply a snapshot ---

  /** Takes the ledger's snapshot if it is newer than what the workflow holds. */
  adopt(snapshot: LedgerSnapshot): void {
    if (snapshot.version > this.version) {
      this.version = snapshot.version;
      this.totals = snapshot.totals;
    }
  }

  /** A group's write came back: adopt its snapshot, release its reservations, answer each update. */
  settleGroup(group: QueuedWrite[], result: WriteLineItemsResult): void {
    const writes = group.flatMap((q) => q.writes);
    this.adopt(result.snapshot);
    for (const q of group) addAll(this.pending, q.reserved, -1);
    this.itemsThisRun += writes.reduce((k, w) => k + ('batch' in w ? w.batch.item_count : 1), 0);
    this.writing = false;
    let at = 0;
    for (const q of group) {
      q.settle(result.outcomes.slice(at, at + q.writes.length));
      at += q.writes.length;
    }
  }

  // --- Close ---

  /** The close's stored result is final: Postgres's totals replace the mirror's. */
  closedWith(stored: { closed_at: string; totals: TotalsByCurrency; version?: number }): void {
    this.totals = stored.totals;
    this.version = Math.max(this.version, stored.version ?? 0);
    this.closedAt = stored.closed_at;
  }
}
