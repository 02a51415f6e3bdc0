/** SQL for line items. */
import type { Queryable } from '../core/db';
import { parseMinorUnits, type TotalsByCurrency } from '../core/money';
import type { LedgerSnapshot, LineItem, NewLineItem, StagedBatchRef } from './types';

interface RawLineItem {
  line_item_id: string;
  position: string;
  bill_id: string;
  amount: string;
  currency: string;
  description: string;
  metadata: Record<string, unknown> | null;
  tax_rates: string[] | null;
  source_ref: string;
  created_at: Date;
}

const COLUMNS = 'line_item_id, position, bill_id, amount, currency, description, metadata, tax_rates, source_ref, created_at';

export interface StoredLineItem {
  item: LineItem;
  position: string;
  source_ref: string;
}

function toStored(r: RawLineItem): StoredLineItem {
  return {
    item: {
      line_item_id: r.line_item_id,
      bill_id: r.bill_id,
      amount: parseMinorUnits(r.amount),
      currency: r.currency,
      description: r.description,
      metadata: r.metadata,
      tax_rates: r.tax_rates,
      created_at: r.created_at.toISOString(),
    },
    position: r.position,
    source_ref: r.source_ref,
  };
}

export type StagedItem = NewLineItem & { line_item_id: string };

/**
 * Stores a batch for its bill's workflow to apply, only while the bill is open.
 * Staging it again for the same request is a no-op; `no_bill` when the bill does not exist,
 * `closed` when it no longer takes line items, `other_request` when the batch id was staged for a
 * different request.
 */
export async function stageBatch(
  db: Queryable,
  batch: { batch_id: string; bill_id: string; request_fingerprint: string; items: StagedItem[] },
): Promise<'staged' | 'no_bill' | 'closed' | 'other_request'> {
  try {
    const staged = await db.query(
      `INSERT INTO line_item_batches (batch_id, bill_id, request_fingerprint, item_count, items)
       SELECT $1, $2, $3, $4, $5::jsonb WHERE EXISTS (SELECT 1 FROM bills WHERE bill_id = $2 AND status = 'open')
       ON CONFLICT (batch_id) DO NOTHING`,
      [batch.batch_id, batch.bill_id, batch.request_fingerprint, batch.items.length, JSON.stringify(batch.items)],
    );
    if (staged.rowCount === 1) return 'staged';
    const { rows } = await db.query<{ fingerprint: string | null; status: string | null }>(
      `SELECT (SELECT request_fingerprint FROM line_item_batches WHERE batch_id = $1) AS fingerprint,
              (SELECT status FROM bills WHERE bill_id = $2) AS status`,
      [batch.batch_id, batch.bill_id],
    );
    const { fingerprint, status } = rows[0];
    if (fingerprint !== null) return fingerprint === batch.request_fingerprint ? 'staged' : 'other_request';
    return status === null ? 'no_bill' : 'closed';
  } catch (err) {
    if ((err as { code?: string }).code === FOREIGN_KEY_VIOLATION) return 'no_bill';
    throw err;
  }
}

const FOREIGN_KEY_VIOLATION = '23503';

/** A staged batch its workflow refused: it will never apply. Applied ones stay. */
export async function dropStagedBatch(db: Queryable, batchId: string): Promise<void> {
  await db.query('DELETE FROM line_item_batches WHERE batch_id = $1 AND applied_by IS NULL', [batchId]);
}

/** Every batch of a closing bill: applied ones are in line_items, any other can no longer apply. */
export async function dropBatchesOfBill(tx: Queryable, billId: string): Promise<void> {
  await tx.query('DELETE FROM line_item_batches WHERE bill_id = $1', [billId]);
}

/** Oldest first, keyset-paginated on the position within the bill. */
export async function selectLineItemsPage(
  db: Queryable,
  billId: string,
  limit: number,
  afterPosition: string | null,
): Promise<StoredLineItem[]> {
  const { rows } = await db.query<RawLineItem>(
    `SELECT ${COLUMNS} FROM line_items
     WHERE bill_id = $1 AND ($3::bigint IS NULL OR position > $3::bigint)
     ORDER BY position LIMIT $2`,
    [billId, limit, afterPosition],
  );
  return rows.map(toStored);
}

export async function findLineItems(db: Queryable, lineItemIds: string[]): Promise<StoredLineItem[]> {
  const { rows } = await db.query<RawLineItem>(`SELECT ${COLUMNS} FROM line_items WHERE line_item_id = ANY($1::uuid[])`, [lineItemIds]);
  return rows.map(toStored);
}

/** A line item with its id, as one write of a group carries it. */
export type LedgerItem = NewLineItem & { line_item_id: string };

/** What became of one item of a group: stored now or earlier; `same` is false when the id holds other content. */
export interface ItemWritten {
  line_item_id: string;
  created_at: string;
  same: boolean;
}

/** What became of one staged batch of a group. */
export interface BatchWritten {
  batch_id: string;
  /** `missing`: not staged for this bill; `mismatch`: its rows disagree with its declared count or sums. */
  status: 'applied' | 'missing' | 'mismatch';
}

interface RawSnapshot {
  version: string;
  totals: Record<string, { amount: string; count: string }>;
}

function toSnapshot(r: RawSnapshot): LedgerSnapshot {
  const totals: TotalsByCurrency = {};
  for (const [currency, t] of Object.entries(r.totals))
    totals[currency] = { amount: parseMinorUnits(t.amount), count: parseMinorUnits(t.count) };
  return { version: parseMinorUnits(r.version), totals };
}

/** Postgres SQLSTATE raised by append_line_items (and the guard on line items) for a closed bill. */
export const BILL_CLOSED_SQLSTATE = 'FE001';

/** Postgres SQLSTATE raised by append_line_items for a bill that does not exist. */
export const BILL_MISSING_SQLSTATE = 'FE007';

/**
 * One group of writes for one bill: single items and staged batches in one
 * transaction, one position reservation and one round trip. Returns the ledger snapshot the
 * transaction left and, in input order, what became of each item and batch.
 */
export async function appendLineItems(
  db: Queryable,
  billId: string,
  items: LedgerItem[],
  batches: StagedBatchRef[],
  sourceRef: string,
): Promise<{ snapshot: LedgerSnapshot; items: ItemWritten[]; batches: BatchWritten[] }> {
  const { rows } = await db.query<
    RawSnapshot & { items: { line_item_id: string; created_at: string; same: boolean }[]; batches: BatchWritten[] }
  >({
    name: 'append_line_items',
    text: 'SELECT version::text, totals, items, batches FROM append_line_items($1, $2::jsonb, $3::jsonb, $4)',
    values: [
      billId,
      JSON.stringify(
        items.map((i) => ({
          line_item_id: i.line_item_id,
          amount: i.amount,
          currency: i.currency,
          description: i.description,
          metadata: i.metadata,
          // Absent (NULL in the row) when not given, as they reach us from a 1.0.0 workflow.
          tax_rates: i.tax_rates,
          actor: i.actor,
        })),
      ),
      JSON.stringify(batches.map((b) => ({ batch_id: b.batch_id, item_count: b.item_count, totals: b.totals }))),
      sourceRef,
    ],
  });
  const r = rows[0];
  return {
    snapshot: toSnapshot(r),
    items: r.items.map((i) => ({ ...i, created_at: new Date(i.created_at).toISOString() })),
    batches: r.batches,
  };
}

/** The bill's ledger snapshot as it stands; null when there is no such bill. */
export async function ledgerSnapshot(db: Queryable, billId: string): Promise<LedgerSnapshot | null> {
  const { rows } = await db.query<RawSnapshot>({
    name: 'ledger_snapshot',
    text: 'SELECT version::text, totals FROM ledger_snapshot($1)',
    values: [billId],
  });
  return rows[0] ? toSnapshot(rows[0]) : null;
}
