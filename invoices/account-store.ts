/** SQL for invoice accounts, payments and credit notes. Plain rows; the rules are in account-rules.ts. */
import type { Queryable } from '../core/db';
import { parseMinorUnits } from '../core/money';
import type { Config } from '../core/config';
import type { CreditNoteDocument, InvoiceParties, TaxSubtotal } from './document';
import { sellerOf } from './seller';
import type { CreditNote, CreditNoteLine, InvoiceAccount, InvoiceAmounts, Payment, PaymentStatus, TaxLine } from './types';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

interface AccountRaw {
  bill_id: string;
  invoice_number: string;
  status: PaymentStatus;
  payment_terms: string;
  finalized_at: Date;
  due_at: Date;
  paid_at: Date | null;
  overdue_at: Date | null;
  uncollectible_at: Date | null;
  voided_at: Date | null;
  version: string;
  amounts: AmountsRaw[] | null;
  taxes: TaxSubtotal[] | null;
}

export interface AmountsRaw {
  currency: string;
  total: string;
  tax: string;
  credited: string;
  paid: string;
}

/** The balances of an account as JSON text amounts (BIGINT sums never pass through a float). */
export const AMOUNTS_SQL = (alias: string) => `(SELECT json_agg(json_build_object('currency', x.currency, 'total', x.total::text,
    'tax', x.tax::text, 'credited', x.credited::text, 'paid', x.paid::text) ORDER BY x.currency)
    FROM invoice_balances x WHERE x.bill_id = ${alias}.bill_id)`;

export function toAmounts(raw: AmountsRaw[] | null): InvoiceAmounts[] {
  return (raw ?? []).map((r) => {
    const [total, tax, credited, paid] = [r.total, r.tax, r.credited, r.paid].map(parseMinorUnits);
    return { currency: r.currency, net: total - tax, tax, total, credited, paid, due: total - credited - paid };
  });
}

/** A document's tax subtotals as the API lists them. */
export const toTaxLines = (taxes: TaxSubtotal[] | null | undefined): TaxLine[] =>
  (taxes ?? []).map((t) => ({
    currency: t.currency,
    code: t.rate.code,
    name: t.rate.name,
    percentage: t.rate.percentage,
    category: t.rate.category,
    exemption_reason: t.rate.exemption_reason,
    net: t.net,
    tax: t.tax,
  }));

function toAccount(r: AccountRaw): InvoiceAccount {
  return {
    bill_id: r.bill_id,
    invoice_number: r.invoice_number,
    status: r.status,
    payment_terms: r.payment_terms,
    finalized_at: r.finalized_at.toISOString(),
    due_at: r.due_at.toISOString(),
    paid_at: iso(r.paid_at),
    overdue_at: iso(r.overdue_at),
    uncollectible_at: iso(r.uncollectible_at),
    voided_at: iso(r.voided_at),
    amounts: toAmounts(r.amounts),
    taxes: toTaxLines(r.taxes),
    version: parseMinorUnits(r.version),
  };
}

/**
 * Opens the account of a numbered invoice, once: its totals are the closed bill's, its due date
 * the issue date plus the bill's payment terms. True when this call opened it.
 */
export async function openAccount(tx: Queryable, billId: string): Promise<boolean> {
  const opened = await tx.query(
    `INSERT INTO invoice_accounts (bill_id, payment_terms, finalized_at, due_at)
     -- In UTC whatever the session's zone: a day of payment terms is 24 hours, DST or not.
     SELECT i.bill_id, b.payment_terms, i.issued_at, (i.issued_at AT TIME ZONE 'UTC' + b.payment_terms::interval) AT TIME ZONE 'UTC'
       FROM invoices i JOIN bills b USING (bill_id) WHERE i.bill_id = $1
     ON CONFLICT (bill_id) DO NOTHING`,
    [billId],
  );
  if (opened.rowCount !== 1) return false;
  // What is due is the gross the invoice froze; an invoice of 1.0.0 froze nothing: its bill's totals, untaxed.
  await tx.query(
    `INSERT INTO invoice_balances (bill_id, currency, total, tax)
     SELECT i.bill_id, t ->> 'currency', (t ->> 'gross')::bigint, (t ->> 'tax')::bigint
       FROM invoices i, jsonb_array_elements(i.document -> 'totals') t WHERE i.bill_id = $1
     UNION ALL
     SELECT t.bill_id, t.currency, t.amount, 0 FROM bill_totals t JOIN invoices i USING (bill_id)
      WHERE t.bill_id = $1 AND i.document IS NULL`,
    [billId],
  );
  return true;
}

/** The account as the statement's snapshot sees it; null when the invoice has none. */
export async function readAccount(db: Queryable, billId: string): Promise<InvoiceAccount | null> {
  const { rows } = await db.query<AccountRaw>(
    `SELECT a.bill_id, i.invoice_number, a.status, a.payment_terms, a.finalized_at, a.due_at, a.paid_at, a.overdue_at,
            a.uncollectible_at, a.voided_at, a.version::text AS version, ${AMOUNTS_SQL('a')} AS amounts,
            i.document -> 'taxes' AS taxes
       FROM invoice_accounts a JOIN invoices i USING (bill_id) WHERE a.bill_id = $1`,
    [billId],
  );
  return rows[0] ? toAccount(rows[0]) : null;
}

/** Adds to a currency's credited or paid amount (the table's CHECK refuses going past the total). */
export async function addToBalance(
  tx: Queryable,
  billId: string,
  currency: string,
  column: 'credited' | 'paid',
  amount: number,
): Promise<void> {
  await tx.query(`UPDATE invoice_balances SET ${column} = ${column} + $3 WHERE bill_id = $1 AND currency = $2`, [billId, currency, amount]);
}

export type AccountDates = Partial<Record<'paid_at' | 'overdue_at' | 'uncollectible_at' | 'voided_at', string>>;

/** Writes the status and any dates reached now (a date once set stays), and bumps the version. */
export async function saveAccount(tx: Queryable, billId: string, status: PaymentStatus, dates: AccountDates): Promise<void> {
  await tx.query(
    `UPDATE invoice_accounts SET status = $2,
       paid_at = CASE WHEN $2 = 'paid' THEN COALESCE(paid_at, $3::timestamptz) ELSE NULL END,
       overdue_at = COALESCE(overdue_at, $4), uncollectible_at = COALESCE(uncollectible_at, $5),
       voided_at = COALESCE(voided_at, $6), version = version + 1, updated_at = now()
     WHERE bill_id = $1`,
    [billId, status, dates.paid_at ?? null, dates.overdue_at ?? null, dates.uncollectible_at ?? null, dates.voided_at ?? null],
  );
}

interface PaymentRaw {
  payment_id: string;
  bill_id: string;
  currency: string;
  amount: string;
  paid_at: Date;
  reference: string | null;
  recorded_at: Date;
}

const PAYMENT_COLUMNS = 'payment_id, bill_id, currency, amount, paid_at, reference, recorded_at';

const toPayment = (r: PaymentRaw): Payment => ({
  ...r,
  amount: parseMinorUnits(r.amount),
  paid_at: r.paid_at.toISOString(),
  recorded_at: r.recorded_at.toISOString(),
});

/** Inserts the payment unless its id exists; returns it as stored, and whether this call stored it. */
export async function insertPayment(
  tx: Queryable,
  p: Omit<Payment, 'recorded_at'> & { request_fingerprint: string },
): Promise<{ payment: Payment; isNew: boolean }> {
  const inserted = await tx.query<PaymentRaw>(
    `INSERT INTO invoice_payments (payment_id, bill_id, currency, amount, paid_at, reference, request_fingerprint)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (payment_id) DO NOTHING
     RETURNING ${PAYMENT_COLUMNS}`,
    [p.payment_id, p.bill_id, p.currency, p.amount, p.paid_at, p.reference, p.request_fingerprint],
  );
  if (inserted.rows[0]) return { payment: toPayment(inserted.rows[0]), isNew: true };
  return { payment: (await findPayment(tx, p.payment_id))!.payment, isNew: false };
}

/** The payment with the fingerprint of the request that recorded it. */
export async function findPayment(db: Queryable, paymentId: string): Promise<{ payment: Payment; request_fingerprint: string } | null> {
  const { rows } = await db.query<PaymentRaw & { request_fingerprint: string }>(
    `SELECT ${PAYMENT_COLUMNS}, request_fingerprint FROM invoice_payments WHERE payment_id = $1`,
    [paymentId],
  );
  if (!rows[0]) return null;
  const { request_fingerprint, ...payment } = rows[0];
  return { payment: toPayment(payment), request_fingerprint };
}

export async function listPayments(db: Queryable, billId: string): Promise<Payment[]> {
  const { rows } = await db.query<PaymentRaw>(
    `SELECT ${PAYMENT_COLUMNS} FROM invoice_payments WHERE bill_id = $1 ORDER BY recorded_at, payment_id`,
    [billId],
  );
  return rows.map(toPayment);
}

interface CreditNoteRaw {
  credit_note_id: string;
  credit_note_number: string;
  bill_id: string;
  invoice_number: string;
  kind: CreditNote['kind'];
  reason: string | null;
  issued_at: Date;
  lines: { currency: string; amount: string; reason: string }[];
  email_status: CreditNote['email_status'];
  sent_at: Date | null;
  taxes: TaxSubtotal[] | null;
}

const CREDIT_NOTE_COLUMNS = `c.credit_note_id, c.credit_note_number, c.bill_id, i.invoice_number, c.kind, c.reason, c.issued_at,
  c.email_status, c.sent_at, c.document -> 'taxes' AS taxes,
  (SELECT json_agg(json_build_object('currency', l.currency, 'amount', l.amount::text, 'reason', l.reason) ORDER BY l.position)
     FROM credit_note_lines l WHERE l.credit_note_id = c.credit_note_id) AS lines`;

const toCreditNote = (r: CreditNoteRaw): CreditNote => ({
  ...r,
  issued_at: r.issued_at.toISOString(),
  sent_at: iso(r.sent_at),
  lines: r.lines.map((l) => ({ currency: l.currency, amount: parseMinorUnits(l.amount), reason: l.reason })),
  taxes: toTaxLines(r.taxes),
});

export async function findCreditNote(db: Queryable, creditNoteId: string): Promise<CreditNote | null> {
  return (await findCreditNoteWithFingerprint(db, creditNoteId))?.credit_note ?? null;
}

/** The credit note with the fingerprint of the request that issued it. */
export async function findCreditNoteWithFingerprint(
  db: Queryable,
  creditNoteId: string,
): Promise<{ credit_note: CreditNote; request_fingerprint: string } | null> {
  const { rows } = await db.query<CreditNoteRaw & { request_fingerprint: string }>(
    `SELECT ${CREDIT_NOTE_COLUMNS}, c.request_fingerprint FROM credit_notes c JOIN invoices i USING (bill_id) WHERE c.credit_note_id = $1`,
    [creditNoteId],
  );
  if (!rows[0]) return null;
  const { request_fingerprint, ...note } = rows[0];
  return { credit_note: toCreditNote(note), request_fingerprint };
}

export async function listCreditNotes(db: Queryable, billId: string): Promise<CreditNote[]> {
  const { rows } = await db.query<CreditNoteRaw>(
    `SELECT ${CREDIT_NOTE_COLUMNS} FROM credit_notes c JOIN invoices i USING (bill_id) WHERE c.bill_id = $1
      ORDER BY c.sequence, c.sequence_value`,
    [billId],
  );
  return rows.map(toCreditNote);
}

export interface NewCreditNote {
  credit_note_id: string;
  bill_id: string;
  credit_note_number: string;
  sequence: string;
  sequence_value: number;
  kind: CreditNote['kind'];
  reason: string | null;
  request_fingerprint: string;
  issued_at: string;
  lines: CreditNoteLine[];
  /** Its parties (its invoice's) and tax split. */
  document: InvoiceParties;
  pdf: Buffer;
  pdf_sha256: string;
}

export async function insertCreditNote(tx: Queryable, n: NewCreditNote): Promise<void> {
  await tx.query(
    `INSERT INTO credit_notes (credit_note_id, bill_id, credit_note_number, sequence, sequence_value, kind, reason, request_fingerprint,
       issued_at, pdf, pdf_sha256, document)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      n.credit_note_id,
      n.bill_id,
      n.credit_note_number,
      n.sequence,
      n.sequence_value,
      n.kind,
      n.reason,
      n.request_fingerprint,
      n.issued_at,
      n.pdf,
      n.pdf_sha256,
      JSON.stringify(n.document),
    ],
  );
  await tx.query(
    `INSERT INTO credit_note_lines (credit_note_id, position, currency, amount, reason)
     SELECT $1, l.ord, l.currency, l.amount, l.reason
       FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (currency TEXT, amount BIGINT, reason TEXT)) WITH ORDINALITY AS l(currency, amount, reason, ord)`,
    [n.credit_note_id, JSON.stringify(n.lines)],
  );
}

export async function creditNotePdf(db: Queryable, billId: string, creditNoteId: string): Promise<{ number: string; pdf: Buffer } | null> {
  const { rows } = await db.query<{ number: string; pdf: Buffer }>(
    'SELECT credit_note_number AS number, pdf FROM credit_notes WHERE bill_id = $1 AND credit_note_id = $2',
    [billId, creditNoteId],
  );
  return rows[0] ?? null;
}

/**
 * A credit note as a document, to render its e-invoice: its frozen parties and tax split (or, for
 * one issued by 1.0.0, today's seller and no tax).
 */
export async function creditNoteDocumentOf(db: Queryable, creditNoteId: string, config: Config): Promise<CreditNoteDocument | null> {
  const { rows } = await db.query<
    CreditNoteRaw & { document: InvoiceParties | null; invoice_issued_at: Date; customer_email: string | null }
  >(
    `SELECT ${CREDIT_NOTE_COLUMNS}, c.document, i.issued_at AS invoice_issued_at, b.customer_email
       FROM credit_notes c JOIN invoices i USING (bill_id) JOIN bills b USING (bill_id) WHERE c.credit_note_id = $1`,
    [creditNoteId],
  );
  const r = rows[0];
  if (!r) return null;
  const note = toCreditNote(r);
  const parties: InvoiceParties = r.document ?? {
    seller: sellerOf(config),
    buyer: { customer_id: null, name: null, email: r.customer_email, address: null, tax_id: null, tax_exempt: false },
    taxes: [],
    totals: [...new Set(note.lines.map((l) => l.currency))].sort().map((currency) => {
      const gross = note.lines.filter((l) => l.currency === currency).reduce((n, l) => n + l.amount, 0);
      return { currency, net: gross, tax: 0, gross };
    }),
  };
  return {
    ...parties,
    credit_note_number: note.credit_note_number,
    invoice_number: note.invoice_number,
    invoice_issued_at: r.invoice_issued_at.toISOString(),
    kind: note.kind,
    reason: note.reason,
    issued_at: note.issued_at,
    bill_id: note.bill_id,
    lines: note.lines,
  };
}

/** Credit notes whose email has not gone out, oldest first. */
export async function unsentCreditNotes(db: Queryable, billId: string): Promise<string[]> {
  const { rows } = await db.query<{ credit_note_id: string }>(
    `SELECT credit_note_id FROM credit_notes WHERE bill_id = $1 AND email_status = 'pending' ORDER BY sequence, sequence_value`,
    [billId],
  );
  return rows.map((r) => r.credit_note_id);
}

export interface CreditNoteMail {
  credit_note_number: string;
  invoice_number: string;
  email_status: CreditNote['email_status'];
  customer_email: string | null;
  pdf: Buffer;
}

/** The credit note's email state, locked until the transaction ends (one sender at a time). */
export async function lockCreditNoteMail(tx: Queryable, creditNoteId: string): Promise<CreditNoteMail | null> {
  const { rows } = await tx.query<CreditNoteMail>(
    `SELECT c.credit_note_number, i.invoice_number, c.email_status, b.customer_email, c.pdf
       FROM credit_notes c JOIN invoices i USING (bill_id) JOIN bills b USING (bill_id)
      WHERE c.credit_note_id = $1 FOR UPDATE OF c`,
    [creditNoteId],
  );
  return rows[0] ?? null;
}

export async function recordCreditNoteMail(
  tx: Queryable,
  creditNoteId: string,
  sent: { status: 'sent' | 'skipped'; recipient: string | null; smtp_message_id: string | null; sent_at: Date | null },
): Promise<void> {
  await tx.query(
    `UPDATE credit_notes SET email_status = $2, recipient = $3, smtp_message_id = $4, sent_at = $5 WHERE credit_note_id = $1`,
    [creditNoteId, sent.status, sent.recipient, sent.smtp_message_id, sent.sent_at],
  );
}

/** One currency of an invoice as reconciliation reads it: its balance beside the records it sums. */
export interface InvoiceBalanceRecord {
  bill_id: string;
  invoice_number: string;
  status: PaymentStatus;
  due_at: Date;
  overdue_at: Date | null;
  uncollectible_at: Date | null;
  voided_at: Date | null;
  /** Null for an invoice with nothing in any currency. */
  currency: string | null;
  /** The balance row: total, credited, paid (text: BIGINT sums never pass through a float). */
  total: string;
  credited: string;
  paid: string;
  /** What it must equal: the bill's final totals, the credit notes' lines, the payments. */
  invoiced: string;
  credit_notes: string;
  payments: string;
}

/**
 * Every finalized invoice (or those of the bills named), one row per currency it has a balance,
 * a bill total, a credit or a payment in (an invoice with none has one row, currency null), with
 * the sums of the records behind each balance: in one snapshot.
 */
export async function invoiceBalanceRecords(db: Queryable, billIds: string[] | null): Promise<InvoiceBalanceRecord[]> {
  const { rows } = await db.query<InvoiceBalanceRecord>(
    `WITH accounts AS (
       SELECT a.bill_id, i.invoice_number, a.status, a.due_at, a.overdue_at, a.uncollectible_at, a.voided_at,
              i.document -> 'totals' AS frozen
         FROM invoice_accounts a JOIN invoices i USING (bill_id) WHERE $1::text[] IS NULL OR a.bill_id = ANY($1)),
     credits AS (
       SELECT n.bill_id, l.currency, SUM(l.amount) AS amount FROM credit_notes n JOIN credit_note_lines l USING (credit_note_id)
        WHERE n.bill_id IN (SELECT bill_id FROM accounts) GROUP BY 1, 2),
     payments AS (
       SELECT bill_id, currency, SUM(amount) AS amount FROM invoice_payments WHERE bill_id IN (SELECT bill_id FROM accounts) GROUP BY 1, 2),
     currencies AS (
       SELECT bill_id, currency FROM invoice_balances WHERE bill_id IN (SELECT bill_id FROM accounts)
       UNION SELECT bill_id, currency FROM bill_totals WHERE bill_id IN (SELECT bill_id FROM accounts) AND amount > 0
       UNION SELECT bill_id, currency FROM credits UNION SELECT bill_id, currency FROM payments)
     -- What was invoiced: the ledger's net plus the tax the invoice froze (gross, as balances are).
     SELECT a.bill_id, a.invoice_number, a.status, a.due_at, a.overdue_at, a.uncollectible_at, a.voided_at, k.currency,
            COALESCE(x.total, 0)::text AS total, COALESCE(x.credited, 0)::text AS credited, COALESCE(x.paid, 0)::text AS paid,
            (COALESCE(t.amount, 0) + COALESCE((SELECT (f ->> 'tax')::bigint FROM jsonb_array_elements(a.frozen) f
                                                WHERE f ->> 'currency' = k.currency), 0))::text AS invoiced,
            COALESCE(c.amount, 0)::text AS credit_notes, COALESCE(p.amount, 0)::text AS payments
       FROM accounts a LEFT JOIN currencies k USING (bill_id)
       LEFT JOIN invoice_balances x ON x.bill_id = a.bill_id AND x.currency = k.currency
       LEFT JOIN bill_totals t ON t.bill_id = a.bill_id AND t.currency = k.currency
       LEFT JOIN credits c ON c.bill_id = a.bill_id AND c.currency = k.currency
       LEFT JOIN payments p ON p.bill_id = a.bill_id AND p.currency = k.currency
      ORDER BY a.bill_id, k.currency`,
    [billIds],
  );
  return rows;
}
