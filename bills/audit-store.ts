/** SQL for a bill's audit trail: its audit_log entries and its line items (each its own record), merged in time order. */
import type { Queryable } from '../core/db';
import type { AuditRecord } from './types';

interface AuditRaw extends Omit<AuditRecord, 'at'> {
  at: Date;
  /** The position in the merged trail: (at as Postgres writes it, source, id). */
  at_key: string;
  source: string;
  id: string;
}

/**
 * A page of the trail after `after` ([at, source, id] of the last entry of the previous page).
 * Line items appear as `line_item added` by their actor; rows of 1.0.0 have no actor (`unknown`).
 */
export async function selectAuditPage(
  db: Queryable,
  billId: string,
  limit: number,
  after: [string, string, string] | null,
): Promise<(AuditRecord & { cursor: [string, string, string] })[]> {
  const { rows } = await db.query<AuditRaw>(
    `SELECT * FROM (
       SELECT at, at::text AS at_key, 'a' AS source, lpad(audit_id::text, 20, '0') AS id, subject, subject_id, action, actor, reason, data
         FROM audit_log WHERE bill_id = $1
       UNION ALL
       SELECT created_at, created_at::text, 'l', lpad(position::text, 20, '0'), 'line_item', line_item_id::text, 'added',
              COALESCE(actor, 'unknown'), NULL,
              jsonb_build_object('amount', amount, 'currency', currency, 'description', description, 'tax_rates', tax_rates)
         FROM line_items WHERE bill_id = $1) t
     WHERE $3::timestamptz IS NULL OR (at, source, id) > ($3::timestamptz, $4::text, $5::text)
     ORDER BY at, source, id LIMIT $2`,
    [billId, limit, after?.[0] ?? null, after?.[1] ?? null, after?.[2] ?? null],
  );
  return rows.map(({ at, at_key, source, id, ...r }) => ({ ...r, at: at.toISOString(), cursor: [at_key, source, id] }));
}
