/** SQL for bills and their stored totals. Returns plain rows or null; never HTTP errors. */
import type { Queryable } from '../core/db';
import { parseMinorUnits, type TotalsByCurrency } from '../core/money';
import { dropBatchesOfBill } from './line-item-store';
import { AMOUNTS_SQL, toAmounts, type AmountsRaw } from '../invoices/account-store';
import type { InvoiceStatus, InvoiceSummary, PaymentStatus } from '../invoices/types';
import { SYSTEM } from '../core/audit';
import type { Price } from '../usage/rating';
import type { UsageAlert } from '../usage/types';
import { emitSql } from '../webhooks/events';
import type { EventType } from '../webhooks/types';
import type { BillHeader, BillingPolicy, TotalsText } from './types';

/** An event to record with a change, in its transaction. */
export interface OutboxEvent {
  type: EventType;
  data: unknown;
}

export interface BillRow extends BillHeader {
  /** `draft`: open in the database (it takes line items) and past its period (drafted_at set). */
  status: 'open' | 'draft' | 'closed';
  drafted_at: string | null;
  /** The ledger's version and running totals (final once closed), read in the same statement. */
  version: number;
  totals: TotalsByCurrency;
  closed_at: string | null;
  invoice: InvoiceSummary | null;
  cancelled_at: string | null;
  next_bill_id: string | null;
}

interface RawBillRow {
  bill_id: string;
  status: 'open' | 'closed';
  version: string;
  totals: Record<string, { amount: string; count: string }> | null;
  policy: BillingPolicy;
  currency: string | null;
  customer_email: string | null;
  customer_id: string | null;
  tax_rates: string[] | null;
  prices: Price[] | null;
  usage_alerts: UsageAlert[] | null;
  description: string | null;
  billing_period_start: Date;
  billing_period_end: Date;
  created_at: Date;
  closed_at: Date | null;
  request_fingerprint: string;
  interval: string | null;
  billing_anchor_day: number | null;
  recurring_fee_amount: string | null;
  recurring_fee_currency: string | null;
  recurring_fee_description: string | null;
  series_id: string | null;
  previous_bill_id: string | null;
  cancelled_at: Date | null;
  next_bill_id: string | null;
  grace_period: string;
  payment_terms: string;
  drafted_at: Date | null;
  payment_status: PaymentStatus | null;
  due_at: Date | null;
  invoice_amounts: AmountsRaw[] | null;
  invoice_status: InvoiceStatus | null;
  invoice_number: string | null;
  invoice_sent_at: Date | null;
  invoice_error: string | null;
}

// A bill with where its invoice is (bill_postprocess and invoices belong to the postprocess service).
// And, for a recurring bill, the bill of the next period.
const FROM = `bills b LEFT JOIN bill_postprocess pp USING (bill_id) LEFT JOIN invoices i USING (bill_id)
  LEFT JOIN invoice_accounts ia ON ia.bill_id = b.bill_id LEFT JOIN bills nb ON nb.previous_bill_id = b.bill_id`;
const COLUMNS = `b.bill_id, b.status, b.policy, b.currency, b.customer_email, b.customer_id, b.tax_rates, b.prices, b.usage_alerts, b.description, b.billing_period_start,
  b.billing_period_end, b.created_at, b.closed_at, b.request_fingerprint, b.interval, b.billing_anchor_day,
  b.recurring_fee_amount, b.recurring_fee_currency, b.recurring_fee_description, b.series_id, b.previous_bill_id,
  b.cancelled_at, nb.bill_id AS next_bill_id, pp.status AS invoice_status,
  i.invoice_number, pp.sent_at AS invoice_sent_at, pp.error AS invoice_error, b.line_item_seq::text AS version,
  b.grace_period, b.payment_terms, b.drafted_at, ia.status AS payment_status, ia.due_at, ${AMOUNTS_SQL('ia')} AS invoice_amounts,
  (SELECT json_object_agg(t.currency, json_build_object('amount', t.amount::text, 'count', t.line_item_count::text))
     FROM bill_totals t WHERE t.bill_id = b.bill_id) AS totals`;

function toRow(r: RawBillRow): BillRow {
  const {
    invoice_status,
    invoice_number,
    invoice_sent_at,
    invoice_error,
    recurring_fee_amount,
    recurring_fee_currency,
    recurring_fee_description,
    version,
    totals,
    payment_status,
    due_at,
    invoice_amounts,
    ...bill
  } = r;
  return {
    ...bill,
    status: r.status === 'open' && r.drafted_at ? 'draft' : r.status,
    drafted_at: r.drafted_at ? r.drafted_at.toISOString() : null,
    version: parseMinorUnits(version),
    totals: Object.fromEntries(
      Object.entries(totals ?? {}).map(([c, t]) => [c, { amount: parseMinorUnits(t.amount), count: parseMinorUnits(t.count) }]),
    ),
    recurring_fee:
      recurring_fee_amount === null
        ? null
        : { amount: parseMinorUnits(recurring_fee_amount), currency: recurring_fee_currency!, description: recurring_fee_description! },
    cancelled_at: r.cancelled_at ? r.cancelled_at.toISOString() : null,
    billing_period_start: r.billing_period_start.toISOString(),
    billing_period_end: r.billing_period_end.toISOString(),
    created_at: r.created_at.toISOString(),
    closed_at: r.closed_at ? r.closed_at.toISOString() : null,
    invoice:
      r.status === 'closed'
        ? {
            status: invoice_status ?? 'pending',
            invoice_number,
            sent_at: invoice_sent_at ? invoice_sent_at.toISOString() : null,
            error: invoice_error,
            payment_status,
            due_at: due_at ? due_at.toISOString() : null,
            amounts: toAmounts(invoice_amounts),
          }
        : null,
  };
}

/**
 * `already_closed`: the same bill was created and closed long ago (its workflow history has since
 * expired, so Temporal let the id start again); nothing must run twice for it.
 */
export type InsertBillOutcome = 'created' | 'same_request' | 'already_closed' | 'conflict';

/**
 * Idempotent: a second insert of the same bill (same request fingerprint) is not a conflict. Any
 * other unique clash is one, including a second bill for the same period of a series. `events`
 * are recorded in the outbox by the same statement, only when the row is new.
 */
export async function insertBill(db: Queryable, b: BillHeader, events: OutboxEvent[] = []): Promise<InsertBillOutcome> {
  const params: unknown[] = [
    b.bill_id,
    b.policy,
    b.currency,
    b.customer_email,
    b.description,
    b.billing_period_start,
    b.billing_period_end,
    b.created_at,
    b.request_fingerprint,
    b.interval,
    b.billing_anchor_day,
    b.recurring_fee?.amount ?? null,
    b.recurring_fee?.currency ?? null,
    b.recurring_fee?.description ?? null,
    b.series_id,
    b.previous_bill_id,
    b.grace_period,
    b.payment_terms,
    // A header a 1.0.0 workflow carries has neither.
    b.customer_id ?? null,
    b.tax_rates ?? null,
    b.prices ? JSON.stringify(b.prices) : null,
    b.usage_alerts ? JSON.stringify(b.usage_alerts) : null,
  ];
  // The audit trail's first entry of the bill and its events: who created it (a renewal: the series, `system`).
  const ACTOR_PARAM = params.push(b.created_by ?? (b.previous_bill_id ? SYSTEM : 'unknown'));
  // The events carry the creator too (the audit entry's actor).
  const emits = events.map((e) => emitSql(params.push(e.type), params.push(JSON.stringify(e.data)), ACTOR_PARAM));
  const inserted = await db.query(
    `WITH created AS (
       INSERT INTO bills (bill_id, policy, currency, customer_email, description, billing_period_start,
         billing_period_end, created_at, request_fingerprint, interval, billing_anchor_day, recurring_fee_amount,
         recurring_fee_currency, recurring_fee_description, series_id, previous_bill_id, grace_period, payment_terms,
         customer_id, tax_rates, prices, usage_alerts)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
       ON CONFLICT DO NOTHING RETURNING 1),
     audited AS (
       INSERT INTO audit_log (bill_id, subject, subject_id, action, actor) SELECT $1, 'bill', $1, 'created', $${ACTOR_PARAM} FROM created)
     SELECT ${['1', ...emits].join(', ')} FROM created`,
    params,
  );
  if (inserted.rowCount === 1) return 'created';
  const existing = await findBill(db, b.bill_id);
  if (existing?.request_fingerprint !== b.request_fingerprint) return 'conflict';
  return existing.status === 'closed' ? 'already_closed' : 'same_request';
}

export async function findBill(db: Queryable, billId: string): Promise<BillRow | null> {
  const { rows } = await db.query<RawBillRow>(`SELECT ${COLUMNS} FROM ${FROM} WHERE b.bill_id = $1`, [billId]);
  return rows[0] ? toRow(rows[0]) : null;
}

/** Newest first, keyset-paginated on (created_at, bill_id). */
export async function selectBillsPage(
  db: Queryable,
  q: {
    status: 'open' | 'draft' | 'closed' | null;
    invoice_status: InvoiceStatus | null;
    payment_status: PaymentStatus | null;
    series_id: string | null;
    limit: number;
    after: { created_at: string; bill_id: string } | null;
  },
): Promise<BillRow[]> {
  const params: unknown[] = [q.limit];
  const where: string[] = [];
  if (q.status) {
    // A draft is open in the database, with the time it became one.
    params.push(q.status === 'draft' ? 'open' : q.status);
    where.push(`b.status = $${params.length}`);
    if (q.status !== 'closed') where.push(`b.drafted_at IS ${q.status === 'draft' ? 'NOT ' : ''}NULL`);
  }
  if (q.payment_status) {
    params.push(q.payment_status);
    where.push(`ia.status = $${params.length}`);
  }
  if (q.invoice_status) {
    params.push(q.invoice_status);
    // No post-process row yet means pending: it is about to start.
    where.push(`b.status = 'closed' AND COALESCE(pp.status, 'pending') = $${params.length}`);
  }
  if (q.series_id) {
    params.push(q.series_id);
    where.push(`b.series_id = $${params.length}`);
  }
  if (q.after) {
    params.push(q.after.created_at, q.after.bill_id);
    where.push(`(b.created_at, b.bill_id) < ($${params.length - 1}, $${params.length})`);
  }
  const { rows } = await db.query<RawBillRow>(
    `SELECT ${COLUMNS} FROM ${FROM} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY b.created_at DESC, b.bill_id DESC LIMIT $1`,
    params,
  );
  return rows.map(toRow);
}

interface TotalRow {
  bill_id: string;
  currency: string;
  amount: string;
  line_item_count: string;
}

function groupTotals(rows: TotalRow[]): Map<string, TotalsByCurrency> {
  const byBill = new Map<string, TotalsByCurrency>();
  for (const r of rows) {
    const totals = byBill.get(r.bill_id) ?? {};
    totals[r.currency] = { amount: parseMinorUnits(r.amount), count: parseMinorUnits(r.line_item_count) };
    byBill.set(r.bill_id, totals);
  }
  return byBill;
}

/**
 * Totals from Postgres (bill_totals): final for closed bills, and for open bills the running totals
 * the insert trigger keeps of every committed line item.
 */
export async function storedTotals(db: Queryable, bills: { bill_id: string }[]): Promise<Map<string, TotalsByCurrency>> {
  // Running totals while open, final once closed: the insert trigger keeps them.
  const { rows } = await db.query<TotalRow>('SELECT bill_id, currency, amount, line_item_count FROM bill_totals WHERE bill_id = ANY($1)', [
    bills.map((b) => b.bill_id),
  ]);
  return groupTotals(rows);
}

/**
 * Marks the bill closed; its running totals in bill_totals become final, as no line item can join
 * a closed bill. Idempotent for a retried activity.
 */
export async function markClosed(
  tx: Queryable,
  billId: string,
  closedAt: string,
): Promise<{ closed_at: string; totals: TotalsByCurrency; version: number; closed_now: boolean }> {
  const { rows } = await tx.query<{ status: string; closed_at: Date | null; version: string }>(
    'SELECT status, closed_at, line_item_seq::text AS version FROM bills WHERE bill_id = $1 FOR UPDATE',
    [billId],
  );
  if (!rows[0]) throw new Error(`bill ${billId} does not exist`);
  if (rows[0].status === 'open') {
    await tx.query(`UPDATE bills SET status = 'closed', closed_at = $2 WHERE bill_id = $1`, [billId, closedAt]);
  }
  // Applied batches are in line_items; any other can no longer apply.
  await dropBatchesOfBill(tx, billId);
  const totals = await storedTotals(tx, [{ bill_id: billId }]);
  return {
    closed_at: rows[0].closed_at?.toISOString() ?? new Date(closedAt).toISOString(),
    totals: totals.get(billId) ?? {},
    version: parseMinorUnits(rows[0].version),
    closed_now: rows[0].status === 'open',
  };
}

/**
 * The period has ended and the grace period begins: the bill becomes a draft (it stays open to
 * line items). True when this call made it one (a retried activity finds it done).
 */
export async function markDrafted(tx: Queryable, billId: string, at: string): Promise<boolean> {
  const { rowCount } = await tx.query(`UPDATE bills SET drafted_at = $2 WHERE bill_id = $1 AND status = 'open' AND drafted_at IS NULL`, [
    billId,
    at,
  ]);
  return rowCount === 1;
}

/**
 * Marks an open bill's series cancelled (idempotent: the first time stays; `newly` says this call
 * set it). A closed bill changes no more: a cancel that reaches it too late is
 * `closed`, with what the row says. Run it in a transaction: the row stays locked until its end,
 * so of two cancels exactly one is `newly`.
 */
export async function markSeriesCancelled(
  tx: Queryable,
  billId: string,
  at: string,
): Promise<{ cancelled_at: string; newly: boolean } | { closed: true; cancelled_at: string | null } | null> {
  const { rows } = await tx.query<{ status: 'open' | 'closed'; cancelled_at: Date | null }>(
    'SELECT status, cancelled_at FROM bills WHERE bill_id = $1 FOR UPDATE',
    [billId],
  );
  const row = rows[0];
  if (!row) return null;
  const cancelledAt = row.cancelled_at ? row.cancelled_at.toISOString() : null;
  if (row.status !== 'open') return { closed: true, cancelled_at: cancelledAt };
  if (cancelledAt) return { cancelled_at: cancelledAt, newly: false };
  await tx.query('UPDATE bills SET cancelled_at = $2 WHERE bill_id = $1', [billId, at]);
  return { cancelled_at: new Date(at).toISOString(), newly: true };
}

/** A bill as reconciliation reads it: its ledger's sums and its stored totals, both as text. */
export interface ReconciliationRecord {
  bill_id: string;
  status: 'open' | 'closed';
  line_items: TotalsText;
  stored: TotalsText;
}

/** One snapshot: each bill (or those named) with its ledger sums and its stored totals. */
export async function reconciliationRecords(db: Queryable, billIds: string[] | null): Promise<ReconciliationRecord[]> {
  const { rows } = await db.query<ReconciliationRecord>(
    `SELECT b.bill_id, b.status, COALESCE(l.totals, '{}') AS line_items, COALESCE(s.totals, '{}') AS stored
       FROM bills b
       LEFT JOIN (
         SELECT bill_id, json_object_agg(currency, json_build_object('amount', amount::text, 'count', n::text)) AS totals
           FROM (SELECT bill_id, currency, SUM(amount) AS amount, COUNT(*) AS n FROM line_items
                  WHERE $1::text[] IS NULL OR bill_id = ANY($1) GROUP BY bill_id, currency) x
          GROUP BY bill_id
       ) l USING (bill_id)
       LEFT JOIN (
         SELECT bill_id, json_object_agg(currency, json_build_object('amount', amount::text, 'count', line_item_count::text)) AS totals
           FROM bill_totals WHERE $1::text[] IS NULL OR bill_id = ANY($1) GROUP BY bill_id
       ) s USING (bill_id)
      WHERE $1::text[] IS NULL OR b.bill_id = ANY($1)
      ORDER BY b.bill_id`,
    [billIds],
  );
  return rows;
}
