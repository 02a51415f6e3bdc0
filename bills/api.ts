/**
 * Bill endpoints for Encore, line items included: a line item only ever joins a bill through its
 * workflow. The standalone host serves the same table (host/routes.ts).
 */
import { api, type Header } from 'encore.dev/api';
import { run, encoreDeps } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import { cancelBill, createBill, getBill, listBills, requestClose } from './bills';
import { database } from './db';
import * as auditTrail from './audit-trail';
import * as lineItems from './line-items';
import { reconcileBills } from './reconcile';
import type { IdPattern } from '../invoices/requests';
import type {
  AddLineItemBody,
  AddLineItemsBody,
  CancelBillBody,
  CreateBillBody,
  ListBillsQuery,
  ListAuditQuery,
  ListLineItemsQuery,
  ReconcileQuery,
} from './requests';
import type { AddedLineItem, AddedLineItems, AuditPage, Bill, BillPage, ClosedBill, LineItemPage, ReconcileReport } from './types';

const deps = () => encoreDeps(database);

/** Creates a bill and starts its lifecycle workflow. */
export interface CreateBillRequest extends CreateBillBody {
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const create = api({ expose: true, auth: true, method: 'POST', path: '/bills' }, async (req: CreateBillRequest): Promise<Bill> =>
  run('bills:write', async (caller) =>
    createBill(await deps(), req, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt), caller.key_id),
  ),
);

/** Lists bills newest first; open bills carry live totals. */
// An interface, not an alias: Encore and the OpenAPI generator read request types as object types.
export interface ListBillsRequest extends ListBillsQuery {}
export const list = api({ expose: true, auth: true, method: 'GET', path: '/bills' }, async (req: ListBillsRequest): Promise<BillPage> =>
  run('bills:read', async () => listBills(await deps(), req)),
);

/** Returns one bill: live totals while open, stored totals once closed. */
export interface GetBillRequest {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
}
export const get = api({ expose: true, auth: true, method: 'GET', path: '/bills/:billId' }, async (req: GetBillRequest): Promise<Bill> =>
  run('bills:read', async () => getBill(await deps(), req.billId)),
);

/** Closes a bill now; closing a closed bill returns the same final bill. */
export interface CloseBillRequest {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const close = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/close' },
  async (req: CloseBillRequest): Promise<ClosedBill> =>
    run('bills:write', async (caller) =>
      requestClose(await deps(), req.billId, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt), caller.key_id),
    ),
);

/**
 * Finalizes a draft now instead of at the end of its grace period (the same as closing): final
 * totals, the invoice numbered, rendered and sent. Finalizing a closed bill returns it as it is.
 */
export interface FinalizeBillRequest {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const finalize = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/finalize' },
  async (req: FinalizeBillRequest): Promise<ClosedBill> =>
    run('bills:write', async (caller) =>
      requestClose(
        await deps(),
        req.billId,
        idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt),
        caller.key_id,
        'POST /bills/:billId/finalize',
      ),
    ),
);

/**
 * Cancels a recurring bill's series: no bill for the next period. The bill closes at the end of
 * its period, or now with `close_now`.
 */
export interface CancelBillRequest extends CancelBillBody {
  /** The bill's id (`bill_id`): the open bill of the series. */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const cancel = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/cancel' },
  async (req: CancelBillRequest): Promise<Bill> =>
    run('bills:write', async (caller) => {
      const { billId, idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return cancelBill(await deps(), billId, body, idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt), caller.key_id);
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

/** Adds a line item to an open bill; the answer is confirmed: persisted and counted once. */
export interface AddLineItemRequest extends AddLineItemBody {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const addLineItem = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/line-items' },
  async (req: AddLineItemRequest): Promise<AddedLineItem> =>
    run('bills:write', async (caller) =>
      lineItems.addLineItem(
        await deps(),
        req.billId,
        req,
        idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt),
        caller.key_id,
      ),
    ),
);

/**
 * Adds up to 1000 line items to an open bill under one idempotency key: all are validated first,
 * then accepted or refused as a whole, persisted in one insert and counted once.
 */
export interface AddLineItemsRequest extends AddLineItemsBody {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const addLineItems = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/line-items/batch' },
  async (req: AddLineItemsRequest): Promise<AddedLineItems> =>
    run('bills:write', async (caller) =>
      lineItems.addLineItems(
        await deps(),
        req.billId,
        req,
        idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt),
        caller.key_id,
      ),
    ),
);

/** Lists a bill's line items, oldest first. */
export interface ListLineItemsRequest extends ListLineItemsQuery {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
}
export const listLineItems = api(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/line-items' },
  async (req: ListLineItemsRequest): Promise<LineItemPage> =>
    run('bills:read', async () => lineItems.listLineItems(await deps(), req.billId, req)),
);

/** The bill's audit trail, oldest first: each change of the bill and its invoice, who made it, and why. */
export interface ListAuditRequest extends ListAuditQuery {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
}
export const listAudit = api(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/audit' },
  async (req: ListAuditRequest): Promise<AuditPage> => run('bills:read', async () => auditTrail.listAudit(await deps(), req.billId, req)),
);
