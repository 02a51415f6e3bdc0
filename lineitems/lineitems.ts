/** Line item use cases, shared by the Encore endpoints and the standalone host. */
import { hash } from 'node:crypto';
import { parse as uuidParse, stringify as uuidStringify, v4 as uuidv4 } from 'uuid';
import type { Deps } from '../core/deps';
import { idempotencySettings } from '../core/deps';
import { failedPrecondition, invalidArgument, notFound, unexpected } from '../core/errors';
import { lineItems as lineItemsMetric } from '../core/metrics';
import { fingerprint, idempotent } from '../core/idempotency';
import { totalsList, type CurrencyTotal } from '../core/money';
import { decodeCursor, encodeCursor, intParam, parseId } from '../core/validate';
import { findBill, storedTotals } from '../bills/store';
import { isUpdateRefused, isWorkflowGone, toAppError, updateWithDeadline } from '../temporal/client';
import { addLineItemUpdate, addStagedLineItemsUpdate, billWorkflowId } from '../temporal/shared';
import { dropStagedBatch, findLineItem, listLineItems as listLineItemRows, stageBatch } from './store';
import type { AddedLineItem, AddedLineItems, LineItemPage, NewLineItem } from './types';
import { batchTotals, isSameLineItem, parseLineItemBatch, parseNewLineItem } from './validation';

// Fixed namespace for line item ids: uuidv5(bill + key) is the same on every retry, anywhere.
const LINE_ITEM_NAMESPACE = Buffer.from(uuidParse('6f1b2c1e-4a57-4d1e-9a44-5b1f0c2e7d10'));

/**
 * The RFC 9562 UUIDv5 of `bill \n key` in our namespace, as `uuid`'s v5 derives it (a unit test
 * holds the two equal). One-shot `crypto.hash` instead of v5's hash object: a batch derives 1,000
 * of these, and they were 12% of the API's CPU in the batch profile (README, Performance).
 */
export function lineItemId(billId: string, idempotencyKey: string): string {
  const sha1 = hash('sha1', Buffer.concat([LINE_ITEM_NAMESPACE, Buffer.from(`${billId}\n${idempotencyKey}`, 'utf8')]), 'buffer');
  sha1[6] = (sha1[6] & 0x0f) | 0x50; // version 5
  sha1[8] = (sha1[8] & 0x3f) | 0x80; // RFC variant
  return uuidStringify(sha1.subarray(0, 16));
}

/** Counts every add: accepted, or rejected with its reason (`invalid_argument:amount`, ...). */
export async function addLineItem(deps: Deps, billIdParam: unknown, body: unknown, key: string | undefined): Promise<AddedLineItem> {
  try {
    const added = await addOneLineItem(deps, billIdParam, body, key);
    lineItemsMetric.inc({ result: 'accepted', reason: '' });
    return added;
  } catch (err) {
    const e = unexpected(err);
    const field = typeof e.details?.field === 'string' ? `:${e.details.field}` : '';
    lineItemsMetric.inc({ result: 'rejected', reason: `${e.code}${e.code === 'invalid_argument' ? field : ''}` });
    throw err;
  }
}

async function addOneLineItem(deps: Deps, billIdParam: unknown, body: unknown, key: string | undefined): Promise<AddedLineItem> {
  const billId = parseId(billIdParam, 'billId');
  const item = parseNewLineItem(body);
  const fp = fingerprint('POST /bills/:billId/line-items', { bill_id: billId, ...item });
  return idempotent(deps.db, idempotencySettings(deps.config), key, fp, async () => {
    // Without a key the request is new by definition.
    const id = lineItemId(billId, key ?? uuidv4());
    try {
      const handle = deps.temporal.workflow.getHandle(billWorkflowId(billId));
      return await updateWithDeadline(deps.temporal, deps.config.updateTimeoutMs, () =>
        // Temporal answers a repeated update id with the first result, whatever its arguments: the
        // id carries the content too, so a different item under the same key reaches the activity.
        handle.executeUpdate(addLineItemUpdate, { args: [{ ...item, line_item_id: id }], updateId: `${id}:${fp.slice(0, 16)}` }),
      );
    } catch (err) {
      return answerFailedAdd(deps, billId, err, () => landedEarlier(deps, billId, id, item));
    }
  });
}

/**
 * An add the workflow did not take: a retry of one that landed before the bill closed gets the
 * answer it missed (`landed`); otherwise the bill is missing, closed, or the error stands.
 */
async function answerFailedAdd<T>(deps: Deps, billId: string, err: unknown, landed: () => Promise<T | null>): Promise<T> {
  const error = isWorkflowGone(err) ? null : toAppError(err);
  if (error && error.code !== 'failed_precondition') throw error;
  const earlier = await landed();
  if (earlier) return earlier;
  if (error) throw error;
  if (!(await findBill(deps.db, billId))) throw notFound(`bill ${billId} not found`, { bill_id: billId });
  throw failedPrecondition(`bill ${billId} is closed: it accepts no more line items`, { status: 'closed' });
}

async function storedTotalsOf(deps: Deps, billId: string): Promise<CurrencyTotal[]> {
  return totalsList((await storedTotals(deps.db, [{ bill_id: billId }])).get(billId) ?? {});
}

async function landedEarlier(deps: Deps, billId: string, id: string, item: NewLineItem): Promise<AddedLineItem | null> {
  const stored = await findLineItem(deps.db, id);
  if (!stored || !isSameLineItem(stored.item, item)) return null;
  return { line_item: stored.item, totals: await storedTotalsOf(deps, billId) };
}

/**
 * A batch of up to MAX_BATCH_ITEMS line items under one idempotency key: all validated first,
 * then accepted or refused as a whole, in one update and one multi-row insert.
 */
export async function addLineItems(deps: Deps, billIdParam: unknown, body: unknown, key: string | undefined): Promise<AddedLineItems> {
  const billId = parseId(billIdParam, 'billId');
  let items: NewLineItem[];
  try {
    items = parseLineItemBatch(body);
  } catch (err) {
    lineItemsMetric.inc({ result: 'rejected', reason: 'invalid_argument:batch' });
    throw err;
  }
  const fp = fingerprint('POST /bills/:billId/line-items/batch', { bill_id: billId, items });
  try {
    const added = await idempotent(deps.db, idempotencySettings(deps.config), key, fp, () => addStagedBatch(deps, billId, items, key, fp));
    lineItemsMetric.inc({ result: 'accepted', reason: '' }, items.length);
    return added;
  } catch (err) {
    lineItemsMetric.inc({ result: 'rejected', reason: unexpected(err).code }, items.length);
    throw err;
  }
}

/**
 * Claim check: the items go to Postgres once, here, and the workflow gets their id and sums. It
 * reserves the sums, checks them against the bill and has its activity move the staged rows into
 * line_items, so the batch is still accepted or refused as a whole in one update and one insert.
 */
async function addStagedBatch(deps: Deps, billId: string, items: NewLineItem[], key: string | undefined, fp: string): Promise<AddedLineItems> {
  const totals = batchTotals(items);
  const batchKey = key ?? uuidv4();
  const batchId = lineItemId(billId, batchKey);
  const withIds = items.map((item, i) => ({ ...item, line_item_id: lineItemId(billId, `${batchKey}\n#${i}`) }));
  const ids = withIds.map((i) => i.line_item_id);
  const staged = await stageBatch(deps.db, { batch_id: batchId, bill_id: billId, request_fingerprint: fp, items: withIds });
  if (staged === 'no_bill') throw notFound(`bill ${billId} not found`, { bill_id: billId });
  if (staged === 'other_request') {
    throw invalidArgument('this idempotency key was already used for a different batch', { field: 'idempotency_key' });
  }
  try {
    const handle = deps.temporal.workflow.getHandle(billWorkflowId(billId));
    const result = await updateWithDeadline(deps.temporal, deps.config.updateTimeoutMs, () =>
      handle.executeUpdate(addStagedLineItemsUpdate, {
        args: [{ batch_id: batchId, item_count: items.length, totals }],
        updateId: `${batchId}:${fp.slice(0, 16)}`,
      }),
    );
    return { line_item_ids: ids, totals: result.totals };
  } catch (err) {
    // Refused for good (not merely unanswered in time): its staged items will never apply.
    if (isWorkflowGone(err) || isUpdateRefused(err)) await dropStagedBatch(deps.db, batchId);
    // A retry of a batch that landed before the bill closed gets the answer it missed.
    return answerFailedAdd(deps, billId, err, async () => {
      if (!(await allStored(deps, ids))) return null;
      return { line_item_ids: ids, totals: await storedTotalsOf(deps, billId) };
    });
  }
}

async function allStored(deps: Deps, ids: string[]): Promise<boolean> {
  const { rows } = await deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM line_items WHERE line_item_id = ANY($1::uuid[])', [ids]);
  return rows[0].n === ids.length;
}

export async function listLineItemsPage(deps: Deps, billId: string, limit: number, afterPosition: string | null): Promise<LineItemPage> {
  const rows = await listLineItemRows(deps.db, billId, limit + 1, afterPosition);
  const page = rows.slice(0, limit);
  return {
    line_items: page.map((r) => r.item),
    next_cursor: rows.length > limit ? encodeCursor([page[page.length - 1].position]) : null,
  };
}

export async function listLineItems(
  deps: Deps,
  billIdParam: unknown,
  query: { limit?: unknown; cursor?: unknown },
): Promise<LineItemPage> {
  const billId = parseId(billIdParam, 'billId');
  const limit = intParam(query.limit, 'limit', Math.min(100, deps.config.listing.lineItemsMaxLimit), 1, deps.config.listing.lineItemsMaxLimit);
  const cursor = decodeCursor(query.cursor, (p) => p.length === 1 && typeof p[0] === 'string' && /^\d{1,19}$/.test(p[0]));
  if (!(await findBill(deps.db, billId))) throw notFound(`bill ${billId} not found`, { bill_id: billId });
  return listLineItemsPage(deps, billId, limit, cursor ? (cursor[0] as string) : null);
}
