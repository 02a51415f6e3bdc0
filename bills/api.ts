/** Bill endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { api, type Header } from 'encore.dev/api';
import { run, encoreDeps } from '../core/encore';
import { pickIdempotencyKey } from '../core/idempotency';
import { cancelBill, closeBill, createBill, getBill, listBills, type BillPage, type ClosedBill } from './bills';
import { database } from './db';
import { reconcileBills, type ReconcileReport } from './reconcile';
import type { InvoiceStatus } from '../postprocess/types';
import type { Bill, BillingPolicy, RecurringFee } from './types';

const deps = () => encoreDeps(database);

/** Creates a bill and starts its lifecycle workflow. */
export interface CreateBillRequest {
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
  /** 1-64 of [A-Za-z0-9_.:-]; generated when absent. */
  bill_id?: string;
  /**
   * RFC 3339, in the future; the bill closes itself then. Required for `usage_based`; for a
   * recurring bill it ends the first, possibly partial, period (computed from `interval` when absent).
   */
  billing_period_end?: string;
  /** Restricts the bill to one ISO 4217 currency. */
  currency?: string;
  /** `usage_based` (default), `recurring` (needs `interval`) or `monthly` (recurring, `P1M`). */
  policy?: BillingPolicy;
  /** Recurring bills: an ISO 8601 duration, `P1M`, `P1W`, `P1D`, `PT5S`, ... */
  interval?: string;
  /** Recurring bills of months or years: the day of the month periods end on (1-31; default 1, a calendar month). */
  billing_anchor_day?: number;
  /** Recurring bills: added as a line item at the start of every period, prorated for a partial one. */
  recurring_fee?: RecurringFee;
  customer_email?: string;
  description?: string;
}
export const create = api(
  { expose: true, auth: true, method: 'POST', path: '/bills' },
  async (req: CreateBillRequest): Promise<Bill> =>
    run('bills:write', async () => createBill(await deps(), req, pickIdempotencyKey(req.idempotencyKey, req.idempotencyKeyAlt))),
);

/** Lists bills newest first; open bills carry live totals. */
export interface ListBillsRequest {
  status?: 'open' | 'closed';
  /** Closed bills whose invoice is in this state, e.g. `failed`. */
  invoice_status?: InvoiceStatus;
  /** The bills of one recurring series (its first bill's id), newest period first. */
  series_id?: string;
  /** 1-100, default 20. */
  limit?: number;
  cursor?: string;
}
export const list = api(
  { expose: true, auth: true, method: 'GET', path: '/bills' },
  async (req: ListBillsRequest): Promise<BillPage> => run('bills:read', async () => listBills(await deps(), req)),
);

/** Returns one bill: live totals while open, stored totals once closed. */
export interface GetBillRequest {
  /** The bill's id (`bill_id`). */
  billId: string;
}
export const get = api(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId' },
  async (req: GetBillRequest): Promise<Bill> => run('bills:read', async () => getBill(await deps(), req.billId)),
);

/** Closes a bill now; closing a closed bill returns the same final bill. */
export interface CloseBillRequest {
  /** The bill's id (`bill_id`). */
  billId: string;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const close = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/close' },
  async (req: CloseBillRequest): Promise<ClosedBill> =>
    run('bills:write', async () => closeBill(await deps(), req.billId, pickIdempotencyKey(req.idempotencyKey, req.idempotencyKeyAlt))),
);

/**
 * Cancels a recurring bill's series: no bill for the next period. The bill closes at the end of
 * its period, or now with `close_now`.
 */
export interface CancelBillRequest {
  /** The bill's id (`bill_id`): the open bill of the series. */
  billId: string;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
  /** Close the bill now instead of at the end of its period. */
  close_now?: boolean;
}
export const cancel = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/cancel' },
  async (req: CancelBillRequest): Promise<Bill> =>
    run('bills:write', async () => {
      const { billId, idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return cancelBill(await deps(), billId, body, pickIdempotencyKey(idempotencyKey, idempotencyKeyAlt));
    }),
);

/**
 * Reconciliation (admin): for every bill, or one, compares the sum of its line items, its stored
 * totals and, while open, its workflow's live totals; lists every bill where they differ.
 */
export interface ReconcileRequest {
  /** Only this bill. */
  bill_id?: string;
}
export const reconcile = api(
  { expose: true, auth: true, method: 'GET', path: '/admin/reconcile' },
  async (req: ReconcileRequest): Promise<ReconcileReport> => run('admin', async () => reconcileBills(await deps(), req)),
);
