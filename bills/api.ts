/** Bill endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { api, type Header } from 'encore.dev/api';
import { run, encoreDeps } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import { cancelBill, closeBill, createBill, getBill, listBills } from './bills';
import { database } from './db';
import { reconcileBills } from './reconcile';
import type {
  Bill, BillPage, CancelBillBody, ClosedBill, CreateBillBody, ListBillsQuery, ReconcileQuery, ReconcileReport,
} from './types';

const deps = () => encoreDeps(database);

/** Creates a bill and starts its lifecycle workflow. */
export interface CreateBillRequest extends CreateBillBody {
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const create = api(
  { expose: true, auth: true, method: 'POST', path: '/bills' },
  async (req: CreateBillRequest): Promise<Bill> =>
    run('bills:write', async (caller) => createBill(await deps(), req, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt))),
);

/** Lists bills newest first; open bills carry live totals. */
// An interface, not an alias: Encore and the OpenAPI generator read request types as object types.
export interface ListBillsRequest extends ListBillsQuery {}
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
    run('bills:write', async (caller) => closeBill(await deps(), req.billId, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt))),
);

/**
 * Cancels a recurring bill's series: no bill for the next period. The bill closes at the end of
 * its period, or now with `close_now`.
 */
export interface CancelBillRequest extends CancelBillBody {
  /** The bill's id (`bill_id`): the open bill of the series. */
  billId: string;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const cancel = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/cancel' },
  async (req: CancelBillRequest): Promise<Bill> =>
    run('bills:write', async (caller) => {
      const { billId, idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return cancelBill(await deps(), billId, body, idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt));
    }),
);

/**
 * Reconciliation (admin): for every bill, or one, compares the sum of its line items, its stored
 * totals and, while open, its workflow's live totals; lists every bill where they differ.
 */
export interface ReconcileRequest extends ReconcileQuery {}
export const reconcile = api(
  { expose: true, auth: true, method: 'GET', path: '/admin/reconcile' },
  async (req: ReconcileRequest): Promise<ReconcileReport> => run('admin', async () => reconcileBills(await deps(), req)),
);
