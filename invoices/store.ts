/** SQL for invoices and the post-process state of closed bills. */
import type { Queryable } from '../core/db';
import { parseMinorUnits } from '../core/money';
import type { InvoiceParties } from './document';
import type { InvoiceStatus, PostProcessStep } from './types';

// Where a failed post-process resumes: at delivery when its PDF exists, else at generation.
const RESUMED_STATUS = `CASE WHEN EXISTS (SELECT 1 FROM invoices i WHERE i.bill_id = pp.bill_id AND i.pdf IS NOT NULL)
  THEN 'generated' ELSE 'pending' END`;

/**
 * Marks the post-process of a bill as under way. A failed one starts over where it failed; a
 * delivered one is left alone.
 */
export async function beginPostProcess(db: Queryable, billId: string, workflowId: string): Promise<InvoiceStatus> {
  const { rows } = await db.query<{ status: InvoiceStatus }>(
    `INSERT INTO bill_postprocess AS pp (bill_id, workflow_id) VALUES ($1, $2)
     ON CONFLICT (bill_id) DO UPDATE SET
       workflow_id = EXCLUDED.workflow_id,
       status = CASE WHEN pp.status = 'failed' THEN ${RESUMED_STATUS} ELSE pp.status END,
       failed_step = NULL,
       error = CASE WHEN pp.status = 'failed' THEN NULL ELSE pp.error END,
       updated_at = now()
     WHERE pp.status NOT IN ('sent', 'skipped', 'no_invoice')
     RETURNING status`,
    [billId, workflowId],
  );
  if (rows[0]) return rows[0].status;
  const existing = await db.query<{ status: InvoiceStatus }>('SELECT status FROM bill_postprocess WHERE bill_id = $1', [billId]);
  return existing.rows[0].status;
}

/** An operator's retry: `failed` becomes pending again. Null when it was not failed. */
export async function reopenFailed(db: Queryable, billId: string): Promise<InvoiceStatus | null> {
  const { rows } = await db.query<{ status: InvoiceStatus }>(
    `UPDATE bill_postprocess pp SET status = ${RESUMED_STATUS}, failed_step = NULL, error = NULL, updated_at = now()
     WHERE bill_id = $1 AND status = 'failed' RETURNING status`,
    [billId],
  );
  return rows[0]?.status ?? null;
}

export interface InvoiceNumber {
  invoice_number: string;
  issued_at: string;
  has_pdf: boolean;
}

/**
 * The bill's invoice number: the one it already has, or the next of its sequence, with the
 * document `freeze` makes. Run in a transaction: the bill row lock makes concurrent attempts for
 * one bill wait for each other, and the counter row lock hands numbers out one at a time; a
 * rollback gives the number back. Returns null when the bill is not closed, and `no_invoice` when
 * `freeze` finds nothing to invoice (then no number is taken: the series stays gap-free).
 */
export async function assignInvoiceNumber(
  tx: Queryable,
  billId: string,
  sequenceOf: (issuedAt: Date) => string,
  now: Date,
  freeze: () => Promise<InvoiceParties | null>,
): Promise<InvoiceNumber | 'no_invoice' | null> {
  const bill = await tx.query<{ status: string }>('SELECT status FROM bills WHERE bill_id = $1 FOR UPDATE', [billId]);
  if (bill.rows[0]?.status !== 'closed') return null;
  const existing = await tx.query<{ invoice_number: string; issued_at: Date; has_pdf: boolean }>(
    'SELECT invoice_number, issued_at, pdf IS NOT NULL AS has_pdf FROM invoices WHERE bill_id = $1',
    [billId],
  );
  if (existing.rows[0]) return { ...existing.rows[0], issued_at: existing.rows[0].issued_at.toISOString() };

  const document = await freeze();
  if (!document) return 'no_invoice';
  const sequence = sequenceOf(now);
  const { value, number: invoiceNumber } = await takeNumber(tx, sequence);
  await tx.query(
    `INSERT INTO invoices (bill_id, invoice_number, sequence, sequence_value, issued_at, document) VALUES ($1, $2, $3, $4, $5, $6)`,
    [billId, invoiceNumber, sequence, value, now, JSON.stringify(document)],
  );
  return { invoice_number: invoiceNumber, issued_at: now.toISOString(), has_pdf: false };
}

/**
 * The next number of a document series ("INV-2026", "CN-2026"): `<sequence>-<6 digits>`. The
 * counter row stays locked until the caller's transaction ends, and a rollback gives the number
 * back, so the numbers a series hands out have no gaps.
 */
export async function takeNumber(tx: Queryable, sequence: string): Promise<{ value: number; number: string }> {
  const { rows } = await tx.query<{ last_value: string }>(
    `INSERT INTO invoice_sequences (sequence, last_value) VALUES ($1, 1)
     ON CONFLICT (sequence) DO UPDATE SET last_value = invoice_sequences.last_value + 1
     RETURNING last_value`,
    [sequence],
  );
  const value = parseMinorUnits(rows[0].last_value);
  return { value, number: `${sequence}-${String(value).padStart(6, '0')}` };
}

export interface InvoiceLine {
  position: number;
  created_at: string;
  description: string;
  amount: number;
  currency: string;
}

export interface InvoiceSource {
  bill: {
    bill_id: string;
    customer_email: string | null;
    description: string | null;
    billing_period_start: string;
    billing_period_end: string;
    closed_at: string;
  };
  totals: { currency: string; amount: number; count: number }[];
  lines: InvoiceLine[];
  line_item_count: number;
}

/** What the invoice shows: the closed bill, its stored totals and its first `maxLines` items. */
export async function loadInvoiceSource(db: Queryable, billId: string, maxLines: number): Promise<InvoiceSource> {
  const [bill, totals, lines] = await Promise.all([
    db.query(
      `SELECT bill_id, customer_email, description, billing_period_start, billing_period_end, closed_at
       FROM bills WHERE bill_id = $1`,
      [billId],
    ),
    db.query<{ currency: string; amount: string; line_item_count: string }>(
      'SELECT currency, amount, line_item_count FROM bill_totals WHERE bill_id = $1 ORDER BY currency',
      [billId],
    ),
    db.query<{ position: string; created_at: Date; description: string; amount: string; currency: string }>(
      `SELECT row_number() OVER (ORDER BY position) AS position, created_at, description, amount, currency FROM line_items
       WHERE bill_id = $1 ORDER BY position LIMIT $2`,
      [billId, maxLines],
    ),
  ]);
  const b = bill.rows[0];
  const totalsList = totals.rows.map((t) => ({
    currency: t.currency,
    amount: parseMinorUnits(t.amount),
    count: parseMinorUnits(t.line_item_count),
  }));
  return {
    bill: {
      bill_id: b.bill_id,
      customer_email: b.customer_email,
      description: b.description,
      billing_period_start: b.billing_period_start.toISOString(),
      billing_period_end: b.billing_period_end.toISOString(),
      closed_at: b.closed_at.toISOString(),
    },
    totals: totalsList,
    lines: lines.rows.map((l) => ({
      position: Number(l.position),
      created_at: l.created_at.toISOString(),
      description: l.description,
      amount: parseMinorUnits(l.amount),
      currency: l.currency,
    })),
    line_item_count: totalsList.reduce((n, t) => n + t.count, 0),
  };
}

/** Writes the PDF once; a second rendering (a retried attempt) leaves the first in place. */
export async function storeInvoicePdf(db: Queryable, billId: string, pdf: Buffer, sha256: string): Promise<void> {
  await db.query('UPDATE invoices SET pdf = $2, pdf_sha256 = $3 WHERE bill_id = $1 AND pdf IS NULL', [billId, pdf, sha256]);
}

/** A bill closed with nothing on it: it has no invoice, for good (nothing to send, nothing due). */
export async function recordNoInvoice(db: Queryable, billId: string): Promise<void> {
  await db.query(
    `UPDATE bill_postprocess SET status = 'no_invoice', error = NULL, failed_step = NULL, updated_at = now()
     WHERE bill_id = $1 AND status <> 'no_invoice'`,
    [billId],
  );
}

export async function markGenerated(db: Queryable, billId: string): Promise<void> {
  await db.query(`UPDATE bill_postprocess SET status = 'generated', updated_at = now() WHERE bill_id = $1 AND status = 'pending'`, [
    billId,
  ]);
}

export interface DeliveryState {
  status: InvoiceStatus;
  customer_email: string | null;
  invoice_number: string | null;
  pdf: Buffer | null;
  billing_period_start: Date;
  billing_period_end: Date;
  closed_at: Date;
  recipient: string | null;
  smtp_message_id: string | null;
  sent_at: Date | null;
  /** The buyer's email frozen on the invoice (its customer's), when the bill has no customer_email. */
  buyer_email: string | null;
}

/**
 * The delivery state, locked until the transaction ends: a second attempt (a retry while the
 * first still runs) waits here and then finds the delivery recorded.
 */
export async function lockDelivery(tx: Queryable, billId: string): Promise<DeliveryState | null> {
  const { rows } = await tx.query<DeliveryState>(
    `SELECT pp.status, b.customer_email, i.invoice_number, i.pdf, b.billing_period_start, b.billing_period_end, b.closed_at,
            pp.recipient, pp.smtp_message_id, pp.sent_at, i.document -> 'buyer' ->> 'email' AS buyer_email
     FROM bill_postprocess pp JOIN bills b USING (bill_id) LEFT JOIN invoices i USING (bill_id)
     WHERE pp.bill_id = $1 FOR UPDATE OF pp`,
    [billId],
  );
  return rows[0] ?? null;
}

export async function recordSent(
  tx: Queryable,
  billId: string,
  d: { recipient: string; smtp_message_id: string; smtp_response: string; sent_at: Date },
): Promise<void> {
  await tx.query(
    `UPDATE bill_postprocess SET status = 'sent', recipient = $2, smtp_message_id = $3, smtp_response = $4,
       sent_at = $5, error = NULL, failed_step = NULL, delivery_attempts = delivery_attempts + 1, updated_at = now()
     WHERE bill_id = $1`,
    [billId, d.recipient, d.smtp_message_id, d.smtp_response, d.sent_at],
  );
}

export async function recordSkipped(tx: Queryable, billId: string, reason: string): Promise<void> {
  await tx.query(
    `UPDATE bill_postprocess SET status = 'skipped', error = NULL, failed_step = NULL, smtp_response = $2, updated_at = now()
     WHERE bill_id = $1`,
    [billId, reason],
  );
}

/** A delivery attempt that failed and will be retried: visible on the bill meanwhile. */
export async function recordDeliveryError(db: Queryable, billId: string, error: string): Promise<void> {
  await db.query(
    `UPDATE bill_postprocess SET error = $2, delivery_attempts = delivery_attempts + 1, updated_at = now()
     WHERE bill_id = $1 AND status NOT IN ('sent', 'skipped')`,
    [billId, error],
  );
}

/**
 * Retries are exhausted (or the failure is permanent): the invoice waits for an operator. The
 * invoice as it now stands, or null when nothing changed (delivered meanwhile, or already
 * recorded by an earlier try of the same step).
 */
export async function recordFailure(
  db: Queryable,
  billId: string,
  step: PostProcessStep,
  error: string,
): Promise<{ invoice_number: string | null } | null> {
  const { rows } = await db.query<{ invoice_number: string | null }>(
    `UPDATE bill_postprocess pp SET status = 'failed', failed_step = $2, error = $3, updated_at = now()
     WHERE bill_id = $1 AND status NOT IN ('sent', 'skipped', 'failed')
     RETURNING (SELECT invoice_number FROM invoices i WHERE i.bill_id = pp.bill_id)`,
    [billId, step, error],
  );
  return rows[0] ?? null;
}

export interface StoredInvoice {
  bill_status: 'open' | 'closed';
  status: InvoiceStatus | null;
  invoice_number: string | null;
  sent_at: string | null;
  error: string | null;
  pdf: Buffer | null;
}

/** The bill's invoice as the API serves it; null when the bill does not exist. */
export async function findInvoice(db: Queryable, billId: string, withPdf: boolean): Promise<StoredInvoice | null> {
  const { rows } = await db.query<Omit<StoredInvoice, 'sent_at'> & { sent_at: Date | null }>(
    `SELECT b.status AS bill_status, pp.status, i.invoice_number, pp.sent_at, pp.error, ${withPdf ? 'i.pdf' : 'NULL::bytea AS pdf'}
     FROM bills b LEFT JOIN bill_postprocess pp USING (bill_id) LEFT JOIN invoices i USING (bill_id)
     WHERE b.bill_id = $1`,
    [billId],
  );
  const row = rows[0];
  return row ? { ...row, sent_at: row.sent_at ? row.sent_at.toISOString() : null } : null;
}
