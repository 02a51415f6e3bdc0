/**
 * Line item use cases, shared by the Encore endpoints and the standalone host. A line item only
 * ever joins a bill through its workflow, so these belong to the bill.
 */
import { v4 as uuidv4 } from 'uuid';
import type { Actor } from '../core/audit';
import type { Deps } from '../core/deps';
import { idempotently } from '../core/deps';
import { AppError, billNotFound, failedPrecondition, invalidArgument, unexpected } from '../core/errors';
import { lineItems as lineItemsMetric } from '../core/metrics';
import { fingerprint, type IdempotencyKey } from '../core/idempotency';
import { totalsList, type CurrencyTotal } from '../core/money';
import { sendUpdate, unknownOutcome, type UpdateFailure } from '../core/temporal';
import { checkStorable, decodeCursor, encodeCursor, isPosition, pageSize } from '../core/validate';
import { checkTaxRateCodes } from '../taxes/tax-rates';
import { lineItemId } from './line-item-ids';
import { dropStagedBatch, findLineItems, ledgerSnapshot, selectLineItemsPage, stageBatch } from './line-item-store';
import type { AddLineItemBody, AddLineItemsBody, ListLineItemsQuery } from './requests';
import type { AddedLineItem, AddedLineItems, LineItem, LineItemPage, NewLineItem } from './types';
import { batchTotals, isSameLineItem, newLineItem } from './line-item-rules';
import { GroupCommitter, type GroupEntry } from './group-commit';
import { requireBill } from './lookup';
import {
  MAX_GROUP_ITEMS,
  addStagedLineItemsUpdate,
  appendLineItemsUpdate,
  type AddLineItemInput,
  type AppendLineItemsResult,
} from './messages';
import { findBill } from './store';
import { billWorkflow } from './workflow-client';

/** Counts every add: accepted, or rejected with its reason (`invalid_argument:amount`, ...). */
export async function addLineItem(
  deps: Deps,
  billId: string,
  body: AddLineItemBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<AddedLineItem> {
  try {
    const added = await addOneLineItem(deps, billId, body, key, actor);
    lineItemsMetric.inc({ result: 'accepted', reason: '' });
    return added;
  } catch (err) {
    countRefusedAdd(err);
    throw err;
  }
}

/** Counts an add refused, by its error code (and field, for `invalid_argument`): the host calls it for a body that fails its shape check. */
export function countRefusedAdd(err: unknown): void {
  const e = unexpected(err);
  const field = typeof e.details?.field === 'string' ? `:${e.details.field}` : '';
  lineItemsMetric.inc({ result: 'rejected', reason: `${e.code}${e.code === 'invalid_argument' ? field : ''}` });
}

/** Counts a batch refused before it was taken apart (its shape, or an item's rules). */
export function countRefusedBatch(): void {
  lineItemsMetric.inc({ result: 'rejected', reason: 'invalid_argument:batch' });
}

async function addOneLineItem(
  deps: Deps,
  billId: string,
  body: AddLineItemBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<AddedLineItem> {
  const item = newLineItem(body);
  checkStorable(item);
  await checkTaxRateCodes(deps, item.tax_rates, 'tax_rates');
  const operation = 'POST /bills/:billId/line-items';
  return idempotently(deps, key, operation, fingerprint(operation, { bill_id: billId, ...item }), async (seed) =>
    // Without a key the request is new by definition.
    groupsOf(deps).add(
      billId,
      { ...item, actor, line_item_id: lineItemId(billId, seed ?? uuidv4()) },
      Date.now() + deps.config.updateTimeoutMs,
    ),
  );
}

type ItemAnswer = AddedLineItem | AppError;
type Groups = GroupCommitter<AddLineItemInput, AddedLineItem>;

// One group committer per process (per Deps): concurrent adds to a bill share its updates.
const groupsByDeps = new WeakMap<Deps, Groups>();

function groupsOf(deps: Deps): Groups {
  let groups = groupsByDeps.get(deps);
  if (!groups) {
    groups = new GroupCommitter(
      (billId, entries) => sendGroup(deps, billId, entries),
      { maxItems: MAX_GROUP_ITEMS, maxBytes: 512 * 1024 },
      (item) => JSON.stringify(item).length,
    );
    groupsByDeps.set(deps, groups);
  }
  return groups;
}

/**
 * One update for a group of adds, one answer per caller. An unknown outcome is "maybe stored":
 * the items are looked up by id and answered if stored; otherwise the same update (same id) is
 * sent again until the earliest caller's deadline, then 503.
 */
async function sendGroup(deps: Deps, billId: string, entries: GroupEntry<AddLineItemInput, AddedLineItem>[]): Promise<void> {
  const items = entries.map((e) => e.item);
  const handle = billWorkflow(deps, billId);
  const updateId = uuidv4();
  const answers = await sendUpdate<ItemAnswer[]>(
    deps.temporal,
    Math.min(...entries.map((e) => e.deadline)),
    async () => answersOf(billId, items, await handle.executeUpdate(appendLineItemsUpdate, { args: [{ items }], updateId })),
    async (failure, timeLeft) => {
      const stored = await storedAnswers(deps, billId, items);
      if (stored.every((a) => a !== null)) return { answer: stored as ItemAnswer[] };
      const error = await standingError(deps, billId, failure);
      if (error.code === 'unavailable' && timeLeft) return 'resend';
      return { answer: stored.map((a) => a ?? error) };
    },
  );
  entries.forEach((e, i) => {
    const answer = answers[i];
    if (answer instanceof AppError) e.reject(answer);
    else e.resolve(answer);
  });
}

function answersOf(billId: string, items: AddLineItemInput[], result: AppendLineItemsResult): ItemAnswer[] {
  return items.map((item, i) => {
    const r = result.results[i];
    if ('refused' in r) return new AppError(r.refused.code, r.refused.message, r.refused.details);
    const { line_item_id, amount, currency, description, metadata } = item;
    const tax_rates = item.tax_rates ?? null;
    return {
      line_item: { line_item_id, bill_id: billId, amount, currency, description, metadata, tax_rates, created_at: r.created_at },
      totals: result.totals,
    };
  });
}

/**
 * Each item as the ledger holds it: the stored line item when its id holds this content, a refusal
 * when it holds other content (the key was used for another item), null when it is not stored.
 */
async function storedItems(deps: Deps, billId: string, items: AddLineItemInput[]): Promise<(LineItem | AppError | null)[]> {
  const rows = await findLineItems(
    deps.db,
    items.map((i) => i.line_item_id),
  );
  const byId = new Map(rows.map((r) => [r.item.line_item_id, r.item]));
  return items.map((item) => {
    const stored = byId.get(item.line_item_id);
    if (!stored) return null;
    if (stored.bill_id !== billId || !isSameLineItem(stored, item)) {
      return invalidArgument('this idempotency key was already used for a different line item', { field: 'idempotency_key' });
    }
    return stored;
  });
}

/** Each add answered from the ledger where it is stored (see storedItems), else null. */
async function storedAnswers(deps: Deps, billId: string, items: AddLineItemInput[]): Promise<(ItemAnswer | null)[]> {
  const stored = await storedItems(deps, billId, items);
  if (stored.every((s) => s === null)) return stored as null[];
  const totals = await storedTotalsOf(deps, billId);
  return stored.map((s) => (s === null || s instanceof AppError ? s : { line_item: s, totals }));
}

/**
 * What an add that did not land is told: the workflow's refusal, a missing or closed bill, or 503
 * while the outcome is unknown (also for a bill still open whose workflow answered as completed).
 */
async function standingError(deps: Deps, billId: string, failure: UpdateFailure): Promise<AppError> {
  if (failure.kind === 'refused') return failure.error;
  if (failure.kind !== 'gone') return unknownOutcome();
  const bill = await findBill(deps.db, billId);
  if (!bill) return billNotFound(billId);
  // Open or a draft: it still takes line items, so whether this one landed is unknown.
  if (bill.status !== 'closed') return unknownOutcome();
  return failedPrecondition(`bill ${billId} is closed: it accepts no more line items`, { status: 'closed' });
}

async function storedTotalsOf(deps: Deps, billId: string): Promise<CurrencyTotal[]> {
  return totalsList((await ledgerSnapshot(deps.db, billId))?.totals ?? {});
}

/**
 * A batch of up to MAX_BATCH_ITEMS line items under one idempotency key: all validated first,
 * then accepted or refused as a whole, in one update and one multi-row insert.
 */
export async function addLineItems(
  deps: Deps,
  billId: string,
  body: AddLineItemsBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<AddedLineItems> {
  let items: NewLineItem[];
  try {
    items = body.items.map((item, i) => newLineItem(item, `items[${i}].`));
    checkStorable({ items });
    for (const [i, item] of items.entries()) await checkTaxRateCodes(deps, item.tax_rates, `items[${i}].tax_rates`);
  } catch (err) {
    countRefusedBatch();
    throw err;
  }
  const operation = 'POST /bills/:billId/line-items/batch';
  const fp = fingerprint(operation, { bill_id: billId, items });
  try {
    const added = await idempotently(deps, key, operation, fp, (seed) =>
      addStagedBatch(
        deps,
        billId,
        items.map((item) => ({ ...item, actor })),
        seed,
        fp,
      ),
    );
    lineItemsMetric.inc({ result: 'accepted', reason: '' }, items.length);
    return added;
  } catch (err) {
    lineItemsMetric.inc({ result: 'rejected', reason: unexpected(err).code }, items.length);
    throw err;
  }
}

/** A batch's id and its items' ids, derived from the seed of its key. */
function batchWithIds(billId: string, batchKey: string, items: NewLineItem[]) {
  return {
    batchId: lineItemId(billId, batchKey),
    withIds: items.map((item, i) => ({ ...item, line_item_id: lineItemId(billId, `${batchKey}\n#${i}`) })),
  };
}

/** The batch's answer if all its rows are stored with its content (it is applied whole or not at all), else null. */
async function appliedBatch(deps: Deps, billId: string, withIds: AddLineItemInput[]): Promise<AddedLineItems | null> {
  const stored = await storedItems(deps, billId, withIds);
  if (stored.some((s) => s instanceof AppError)) {
    throw invalidArgument('this idempotency key was already used for a different batch', { field: 'idempotency_key' });
  }
  return stored.every((s) => s !== null)
    ? { line_item_ids: withIds.map((i) => i.line_item_id), totals: await storedTotalsOf(deps, billId) }
    : null;
}

/**
 * Claim check: the items go to Postgres once, here, and the workflow gets their id and sums. It
 * reserves the sums, checks them against the bill and has its writer move the staged rows into
 * line_items, so the batch is still accepted or refused as a whole in one update and one insert.
 * The staged batch is dropped only when the workflow refused it for good; a batch already applied
 * (by an earlier attempt of this request) is answered whatever the workflow says now.
 */
async function addStagedBatch(
  deps: Deps,
  billId: string,
  items: NewLineItem[],
  seed: string | undefined,
  fp: string,
): Promise<AddedLineItems> {
  const totals = batchTotals(items);
  const { batchId, withIds } = batchWithIds(billId, seed ?? uuidv4(), items);
  const ids = withIds.map((i) => i.line_item_id);
  const staged = await stageBatch(deps.db, { batch_id: batchId, bill_id: billId, request_fingerprint: fp, items: withIds });
  if (staged === 'no_bill') throw billNotFound(billId);
  if (staged === 'other_request') {
    throw invalidArgument('this idempotency key was already used for a different batch', { field: 'idempotency_key' });
  }
  // A batch applied by an earlier attempt of this request is answered whatever happens now.
  const applied = () => appliedBatch(deps, billId, withIds);
  if (staged === 'closed') {
    const answer = await applied();
    if (answer) return answer;
    throw failedPrecondition(`bill ${billId} is closed: it accepts no more line items`, { status: 'closed' });
  }
  const handle = billWorkflow(deps, billId);
  return sendUpdate<AddedLineItems>(
    deps.temporal,
    Date.now() + deps.config.updateTimeoutMs,
    async () => {
      const result = await handle.executeUpdate(addStagedLineItemsUpdate, {
        args: [{ batch_id: batchId, item_count: items.length, totals }],
        updateId: `${batchId}:${fp.slice(0, 16)}`,
      });
      return { line_item_ids: ids, totals: result.totals };
    },
    async (failure, timeLeft) => {
      const answer = await applied();
      if (answer) return { answer };
      const error = await standingError(deps, billId, failure);
      if (error.code === 'unavailable') {
        if (timeLeft) return 'resend';
        throw error; // still staged: a retry with the key sends it again
      }
      // Refused for good, or its bill is gone or closed: these items will never apply.
      await dropStagedBatch(deps.db, batchId);
      throw error;
    },
  );
}

export async function listLineItemsPage(deps: Deps, billId: string, limit: number, afterPosition: string | null): Promise<LineItemPage> {
  const rows = await selectLineItemsPage(deps.db, billId, limit + 1, afterPosition);
  const page = rows.slice(0, limit);
  return {
    line_items: page.map((r) => r.item),
    next_cursor: rows.length > limit ? encodeCursor([page[page.length - 1].position]) : null,
  };
}

export async function listLineItems(deps: Deps, billId: string, query: ListLineItemsQuery): Promise<LineItemPage> {
  const max = deps.config.listing.lineItemsMaxLimit;
  const limit = pageSize(query.limit, Math.min(100, max), max);
  const cursor = decodeCursor(query.cursor, (p) => p.length === 1 && isPosition(p[0]));
  await requireBill(deps.db, billId);
  return listLineItemsPage(deps, billId, limit, cursor ? (cursor[0] as string) : null);
}
