/** SQL for line items. */
import { inTransaction, type Db, type Queryable } from '../core/db';
import { invalidArgument } from '../core/errors';
import { parseMinorUnits, sameTotals, type TotalsByCurrency } from '../core/money';
import type { LedgerSnapshot, LineItem, NewLineItem, StagedBatchRef } from './types';

interface RawLineItem {
  line_item_id: string;
  position: string;
  bill_id: string;
  amount: string;
  currency: string;
  description: string;
  metadata: Record<string, unknown> | null;
  source_ref: string;
  created_at: Date;
}

const COLUMNS = 'line_item_id, position, bill_id, amount, currency, description, metadata, source_ref, created_at';

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
      created_at: r.created_at.toISOString(),
    },
    position: r.position,
    source_ref: r.source_ref,
  };
}

/** Postgres SQLSTATE raised by the trigger that guards line items of closed bills. */
export const BILL_CLOSED_SQLSTATE = 'FE001';

/**
 * Inserts once per line_item_id. Returns the row and whether it was inserted now; a conflicting
 * row is returned as it is so the caller can tell a retry from a different item.
 */
export async function insertLineItem(
  db: Queryable,
  row: NewLineItem & { line_item_id: string; bill_id: string; source_ref: string },
): Promise<{ inserted: boolean; stored: StoredLineItem }> {
  const ins = await db.query<RawLineItem>(
    `INSERT INTO line_items (line_item_id, bill_id, amount, currency, description, metadata, source_ref)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (line_item_id) DO NOTHING
     RETURNING ${COLUMNS}`,
    [row.line_item_id, row.bill_id, row.amount, row.currency, row.description, row.metadata, row.source_ref],
  );
  if (ins.rows[0]) return { inserted: true, stored: toStored(ins.rows[0]) };
  return { inserted: false, stored: (await findLineItem(db, row.line_item_id))! };
}

/**
 * Inserts a batch in one statement, once per line_item_id, after reserving its positions with one
 * update of the bill (migration 4). Returns the ids inserted now and, for the others, the rows
 * already stored (to tell a retry from a different item).
 */
export async function insertLineItems(
  db: Db,
  billId: string,
  rows: (NewLineItem & { line_item_id: string })[],
  sourceRef: string,
): Promise<{ inserted: Set<string>; existing: StoredLineItem[] }> {
  const ins = await inTransaction(db, async (tx) => {
    const reserved = await tx.query<{ first: string }>(
      `UPDATE bills SET line_item_seq = line_item_seq + $2 WHERE bill_id = $1 AND status = 'open'
       RETURNING line_item_seq - $2 + 1 AS first`,
      [billId, rows.length],
    );
    // Refused like the per-row trigger refuses, retries of an applied batch included.
    if (!reserved.rows[0]) throw Object.assign(new Error('bill is closed: line items cannot be changed'), { code: BILL_CLOSED_SQLSTATE });
    return tx.query<{ line_item_id: string }>(
      `INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, metadata, source_ref)
       SELECT id, $1, $8::bigint + ord - 1, amount, currency, description, metadata, $7
       FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[]) WITH ORDINALITY AS t(id, amount, currency, description, metadata, ord)
       ON CONFLICT (line_item_id) DO NOTHING
       RETURNING line_item_id`,
      [
        billId,
        rows.map((r) => r.line_item_id),
        rows.map((r) => r.amount),
        rows.map((r) => r.currency),
        rows.map((r) => r.description),
        rows.map((r) => (r.metadata === null ? null : JSON.stringify(r.metadata))),
        sourceRef,
        reserved.rows[0].first,
      ],
    );
  });
  const inserted = new Set(ins.rows.map((r) => r.line_item_id));
  const others = rows.filter((r) => !inserted.has(r.line_item_id)).map((r) => r.line_item_id);
  if (others.length === 0) return { inserted, existing: [] };
  const found = await db.query<RawLineItem>(`SELECT ${COLUMNS} FROM line_items WHERE line_item_id = ANY($1::uuid[])`, [others]);
  return { inserted, existing: found.rows.map(toStored) };
}

export type StagedItem = NewLineItem & { line_item_id: string };

/**
 * Stores a batch for its bill's workflow to apply (migration 6), only while the bill is open.
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

export type ApplyOutcome = { status: 'applied'; added: TotalsByCurrency; count: number } | { status: 'missing' };

/**
 * Moves a staged batch into line_items in one transaction: its positions reserved with one update
 * of the bill, one insert, and the batch marked applied by `sourceRef` with what it counted. The
 * rows must add up to the sums the workflow reserved. A batch applied earlier answers what it
 * counted for the same `sourceRef` (a retry of the same activity), and nothing for any other (it
 * is already in the totals).
 */
export async function applyStagedBatch(
  db: Db,
  batch: { batch_id: string; bill_id: string; totals: TotalsByCurrency },
  sourceRef: string,
): Promise<ApplyOutcome> {
  const { batch_id: batchId, bill_id: billId } = batch;
  return inTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ item_count: number; applied_by: string | null; applied_totals: TotalsByCurrency | null }>(
      'SELECT item_count, applied_by, applied_totals FROM line_item_batches WHERE batch_id = $1 AND bill_id = $2 FOR UPDATE',
      [batchId, billId],
    );
    const staged = rows[0];
    if (!staged) return { status: 'missing' };
    if (staged.applied_by !== null) {
      const added = staged.applied_by === sourceRef ? staged.applied_totals! : {};
      return { status: 'applied', added, count: Object.values(added).reduce((n, t) => n + t.count, 0) };
    }
    const reserved = await tx.query<{ first: string }>(
      `UPDATE bills SET line_item_seq = line_item_seq + $2 WHERE bill_id = $1 AND status = 'open'
       RETURNING line_item_seq - $2 + 1 AS first`,
      [billId, staged.item_count],
    );
    // Refused like the per-row trigger refuses.
    if (!reserved.rows[0]) throw Object.assign(new Error('bill is closed: line items cannot be changed'), { code: BILL_CLOSED_SQLSTATE });
    // Sums as text: a BIGINT sum must not pass through a float on its way here.
    const inserted = await tx.query<{ currency: string; amount: string; count: number }>(
      `WITH ins AS (
         INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, metadata, source_ref)
         SELECT i.line_item_id, b.bill_id, $3::bigint + i.ord - 1, i.amount, i.currency, i.description, i.metadata, $2
           FROM line_item_batches b,
                ROWS FROM (jsonb_to_recordset(b.items) AS (line_item_id uuid, amount bigint, currency text, description text, metadata jsonb))
                  WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, ord)
          WHERE b.batch_id = $1
         ON CONFLICT (line_item_id) DO NOTHING
         RETURNING currency, amount)
       SELECT currency, sum(amount)::text AS amount, count(*)::int AS count FROM ins GROUP BY currency`,
      [batchId, sourceRef, reserved.rows[0].first],
    );
    const added: TotalsByCurrency = {};
    for (const r of inserted.rows) added[r.currency] = { amount: parseMinorUnits(r.amount), count: r.count };
    // The workflow reserved the declared sums; rows that say otherwise (some already stored by
    // another path) are rolled back and the batch refused as a whole.
    if (!sameTotals(added, batch.totals)) throw invalidArgument('the staged batch does not match its declared sums', { field: 'items' });
    await tx.query('UPDATE line_item_batches SET items = NULL, applied_by = $2, applied_totals = $3::jsonb WHERE batch_id = $1', [
      batchId,
      sourceRef,
      JSON.stringify(added),
    ]);
    return { status: 'applied', added, count: inserted.rows.reduce((n, r) => n + r.count, 0) };
  });
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

export async function findLineItem(db: Queryable, lineItemId: string): Promise<StoredLineItem | null> {
  const { rows } = await db.query<RawLineItem>(`SELECT ${COLUMNS} FROM line_items WHERE line_item_id = $1`, [lineItemId]);
  return rows[0] ? toStored(rows[0]) : null;
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

/** Postgres SQLSTATE raised by append_line_items for a bill that does not exist. */
export const BILL_MISSING_SQLSTATE = 'FE007';

/**
 * One group of writes for one bill (migration 7): single items and staged batches in one
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
