/** Line item endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { api, type Header } from 'encore.dev/api';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { run, encoreDeps } from '../core/encore';
import { pickIdempotencyKey } from '../core/idempotency';
import { addLineItem, addLineItems, listLineItems, type AddedLineItem, type AddedLineItems, type LineItemPage } from './lineitems';

const deps = () => encoreDeps(SQLDatabase.named('fees'));

/** Adds a line item to an open bill; the answer is confirmed: persisted and counted once. */
export interface AddLineItemRequest {
  /** The bill's id (`bill_id`). */
  billId: string;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
  /** Integer minor units (cents for USD, yen for JPY), > 0. */
  amount: number;
  /** ISO 4217 code, e.g. USD, GEL, JPY, KWD. */
  currency: string;
  /** 1-500 characters. */
  description: string;
  /** Any JSON object up to 4 KB. */
  metadata?: Record<string, unknown>;
}
export const add = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/line-items' },
  async (req: AddLineItemRequest): Promise<AddedLineItem> =>
    run('bills:write', async () =>
      addLineItem(await deps(), req.billId, req, pickIdempotencyKey(req.idempotencyKey, req.idempotencyKeyAlt)),
    ),
);

/** One line item of a batch. */
export interface BatchLineItem {
  /** Integer minor units, > 0. */
  amount: number;
  /** ISO 4217 code. */
  currency: string;
  /** 1-500 characters. */
  description: string;
  /** Any JSON object up to 4 KB. */
  metadata?: Record<string, unknown>;
}

/**
 * Adds up to 1000 line items to an open bill under one idempotency key: all are validated first,
 * then accepted or refused as a whole, persisted in one insert and counted once.
 */
export interface AddLineItemsRequest {
  /** The bill's id (`bill_id`). */
  billId: string;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
  /** 1-1000 line items. */
  items: BatchLineItem[];
}
export const addBatch = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/line-items/batch' },
  async (req: AddLineItemsRequest): Promise<AddedLineItems> =>
    run('bills:write', async () =>
      addLineItems(await deps(), req.billId, req, pickIdempotencyKey(req.idempotencyKey, req.idempotencyKeyAlt)),
    ),
);

/** Lists a bill's line items, oldest first. */
export interface ListLineItemsRequest {
  /** The bill's id (`bill_id`). */
  billId: string;
  /** 1-1000, default 100. */
  limit?: number;
  cursor?: string;
}
export const list = api(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/line-items' },
  async (req: ListLineItemsRequest): Promise<LineItemPage> =>
    run('bills:read', async () => listLineItems(await deps(), req.billId, req)),
);
