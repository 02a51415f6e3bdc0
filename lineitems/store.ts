/** SQL for line items. */
import { inTransaction, type Db, type Queryable } from '../core/db';
import { parseMinorUnits } from '../core/money';
import type { LineItem, NewLineItem } from './types';

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

/** Oldest first, keyset-paginated on the position within the bill. */
export async function listLineItems(
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

export async function findLineItem(db: Queryable, lineItemId: string): Promise<StoredLineItem | null> {
  const { rows } = await db.query<RawLineItem>(`SELECT ${COLUMNS} FROM line_items WHERE line_item_id = $1`, [lineItemId]);
  return rows[0] ? toStored(rows[0]) : null;
}
