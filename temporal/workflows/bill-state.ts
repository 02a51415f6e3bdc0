/** The in-memory state of one bill workflow run, and the pure operations on it. */
import { totalsList, type TotalsByCurrency } from '../../core/money';
import type { BillStatus } from '../../bills/types';
import type { BillWorkflowInput, LiveBill } from '../shared';

export interface BillState {
  status: BillStatus;
  currency: string | null;
  /** Confirmed totals: amounts persisted and counted exactly once. */
  totals: TotalsByCurrency;
  /** Amounts of updates in flight, reserved so that concurrent adds cannot overflow a total. */
  pending: TotalsByCurrency;
  lineItemCount: number;
  itemsThisRun: number;
  inflightAdds: number;
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
    totals: input.carried?.totals ?? {},
    pending: {},
    lineItemCount: input.carried?.lineItemCount ?? 0,
    itemsThisRun: 0,
    inflightAdds: 0,
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

export function liveBill(state: BillState): LiveBill {
  return {
    status: state.status,
    totals: totalsList(state.totals),
    line_item_count: state.lineItemCount,
    closed_at: state.closedAt,
    continued_as_new: state.continuedAsNew,
  };
}
