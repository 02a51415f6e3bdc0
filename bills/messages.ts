/**
 * The one place that names the bill workflow's messages: the workflow registers these handlers and
 * the use cases call them, so a name can never drift between the two. Each registered name equals
 * its constant's name, and none may change: running bills and recorded histories use them.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { CurrencyTotal, TotalsByCurrency } from '../core/money';
import type { Refusal } from '../core/refusals';
import type { BillHeader, BillStatus, LedgerSnapshot, NewLineItem, StagedBatchRef } from './types';

export type { Refusal } from '../core/refusals';

/** Business ids are workflow ids: at most one lifecycle per bill, ever. */
export const billWorkflowId = (billId: string) => `bill-${billId}`;

export interface BillWorkflowInput {
  bill: BillHeader;
  /** Present when this run continues an earlier one. */
  carried?: CarriedState;
  /** Continue as new after this many line items in one run; 0 = only when Temporal suggests. */
  continueAsNewAfterItems?: number;
  /** Timeout and retry backoff of its database activities, from the configuration at creation. */
  activitySettings: BillActivitySettings;
  /**
   * Payloads are encrypted (PAYLOAD_ENCRYPTION_KEYS): the customer's email stays out of what
   * Temporal keeps in clear, the search attributes. Absent on bills started without encryption.
   */
  customerPrivate?: boolean;
}

export interface BillActivitySettings {
  timeoutMs: number;
  retryInitialMs: number;
  retryMaxIntervalMs: number;
  /** Per attempt of a local activity (the ledger writes); below the workflow task timeout. */
  localTimeoutMs: number;
}

export interface CarriedState {
  /** The ledger snapshot's version the run ended with. */
  version: number;
  totals: TotalsByCurrency;
  lineItemCount: number;
  continuedAsNew: number;
  /** The period's recurring fee is stored and counted. */
  feeCharged: boolean;
  /** The series was cancelled: no next period. */
  cancelled: boolean;
  /** The period has ended and the grace period runs. */
  drafted: boolean;
  /** The next period's bill, started when this one became a draft. */
  nextBillId: string | null;
}

export interface CancelSeriesInput {
  /** Close this bill now instead of at the end of its period. */
  close_now: boolean;
  /** Who asked, for the audit trail (absent in updates sent by 1.0.0). */
  actor?: string;
}

export interface CloseBillInput {
  /** Who asked, for the audit trail (1.0.0 sent no input). */
  actor?: string;
}

/** What the running workflow knows; the endpoints merge it with the stored bill header. */
export interface LiveBill {
  status: BillStatus;
  /** The ledger version of `totals` (see LedgerSnapshot). */
  version: number;
  totals: CurrencyTotal[];
  line_item_count: number;
  closed_at: string | null;
  /** How many times this bill's workflow has continued as new (history stays bounded). */
  continued_as_new: number;
}

export interface AddLineItemInput extends NewLineItem {
  /** Derived from (bill, idempotency key): a resend names the same line item (bills/line-item-ids.ts). */
  line_item_id: string;
}

export type AddStagedLineItemsInput = StagedBatchRef;

export interface AddLineItemsResult {
  /** Items of this batch. */
  added: number;
  totals: CurrencyTotal[];
  /** The ledger version of `totals`. */
  version: number;
}

/** Items of one appendLineItemsUpdate: the API groups up to this many concurrent adds. */
export const MAX_GROUP_ITEMS = 500;

/** Adds that reached one API process together: each its own line item, answered one by one. */
export interface AppendLineItemsInput {
  items: AddLineItemInput[];
}

/** Per item, in input order: stored (now, or earlier with the same content) or refused. */
export type ItemResult = { created_at: string } | { refused: Refusal };

export interface AppendLineItemsResult {
  /** The ledger snapshot after the items' write, or a later one. */
  version: number;
  totals: CurrencyTotal[];
  results: ItemResult[];
}

/** One write the workflow sends to its ledger (the writeLineItems local activity). */
export type LedgerWrite =
  | { item: AddLineItemInput }
  /** The period's recurring fee: its id is derived from the bill alone. */
  | { recurring_fee: NewLineItem }
  | { batch: StagedBatchRef };

export type WriteOutcome = { status: 'stored'; created_at: string } | { status: 'applied' } | { status: 'refused'; refusal: Refusal };

export interface WriteLineItemsInput {
  bill_id: string;
  writes: LedgerWrite[];
}

export interface WriteLineItemsResult {
  snapshot: LedgerSnapshot;
  outcomes: WriteOutcome[];
}

/** Update-with-Start target: returns once the bill row is persisted. */
export const openBillUpdate = defineUpdate<LiveBill>('openBillUpdate');
/**
 * Adds one or more line items (concurrent adds grouped by the API); each item is stored or refused
 * on its own, and the result carries the ledger snapshot after the write.
 */
export const appendLineItemsUpdate = defineUpdate<AppendLineItemsResult, [AppendLineItemsInput]>('appendLineItemsUpdate');
/**
 * Up to MAX_BATCH_ITEMS line items accepted or rejected as a whole, in one update and one insert:
 * the items are staged in Postgres and the update carries a reference with their sums.
 */
export const addStagedLineItemsUpdate = defineUpdate<AddLineItemsResult, [AddStagedLineItemsInput]>('addStagedLineItemsUpdate');
/** Closes the bill early; returns once final totals are stored. Idempotent. */
export const closeBillUpdate = defineUpdate<LiveBill, [CloseBillInput]>('closeBillUpdate');
/** Stops a recurring bill's renewal (and closes it now when asked). Idempotent. */
export const cancelSeriesUpdate = defineUpdate<LiveBill, [CancelSeriesInput]>('cancelSeriesUpdate');
export const getBillQuery = defineQuery<LiveBill>('getBillQuery');
