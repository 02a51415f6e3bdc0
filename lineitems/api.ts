/** Line item endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { api, type Header } from 'encore.dev/api';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { run, encoreDeps } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import { addLineItem, addLineItems, listLineItems } from './lineitems';
import type { AddLineItemBody, AddLineItemsBody, AddedLineItem, AddedLineItems, LineItemPage, ListLineItemsQuery } from './types';

const deps = () => encoreDeps(SQLDatabase.named('fees'));

/** Adds a line item to an open bill; the answer is confirmed: persisted and counted once. */
export interface AddLineItemRequest extends AddLineItemBody {
  /** The bill's id (`bill_id`). */
  billId: string;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const add = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/line-items' },
  async (req: AddLineItemRequest): Promise<AddedLineItem> =>
    run('bills:write', async (caller) =>
      addLineItem(await deps(), req.billId, req, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt)),
    ),
);

/**
 * Adds up to 1000 line items to an open bill under one idempotency key: all are validated first,
 * then accepted or refused as a whole, persisted in one insert and counted once.
 */
export interface AddLineItemsRequest extends AddLineItemsBody {
  /** The bill's id (`bill_id`). */
  billId: string;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const addBatch = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/line-items/batch' },
  async (req: AddLineItemsRequest): Promise<AddedLineItems> =>
    run('bills:write', async (caller) =>
      addLineItems(await deps(), req.billId, req, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt)),
    ),
);

/** Lists a bill's line items, oldest first. */
export interface ListLineItemsRequest extends ListLineItemsQuery {
  /** The bill's id (`bill_id`). */
  billId: string;
}
export const list = api(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/line-items' },
  async (req: ListLineItemsRequest): Promise<LineItemPage> =>
    run('bills:read', async () => listLineItems(await deps(), req.billId, req)),
);
