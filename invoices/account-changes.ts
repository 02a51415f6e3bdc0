/**
 * Every change to an invoice's account, each one transaction under the account's row lock: the
 * records (payment, credit note with its number and PDF), the balances, the status, and the
 * outbox events, all or nothing. Each is idempotent by the id the API derives from the request's
 * idempotency key, so a retry after any crash finds what the first attempt committed.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../core/config';
import { inTransaction, type Db, type Queryable } from '../core/db';
import { AppError, failedPrecondition } from '../core/errors';
import { emitEvent } from '../webhooks/events';
import { creditLines, checkPayment, statusOf, type CreditNoteInput, type PaymentInput } from './account-rules';
import {
  addToBalance,
  findCreditNote,
  findCreditNoteWithFingerprint,
  findPayment,
  insertCreditNote,
  insertPayment,
  listCreditNotes,
  lockCreditNoteMail,
  openAccount,
  readAccount,
  recordCreditNoteMail,
  saveAccount,
  unsentCreditNotes,
  type AccountDates,
} from './account-store';
import { recordAudit, SYSTEM } from '../core/audit';
import { renderCreditNotePdf } from './credit-note-pdf';
import type { CreditedLine, InvoiceDocument, InvoiceParties } from './document';
import { loadInvoiceDocument } from './invoice-document';
import { sellerLogo } from './seller';
import { splitCredit } from './tax';
import { issuerName, mailDomain, type Mailer } from './mailer';
import { takeNumber } from './store';
import type { CreditNote, CreditNoteIssued, InvoiceAccount, InvoiceVoided, PaymentRecorded } from './types';

export interface AccountDeps {
  db: Db;
  config: Config;
  mailer: Mailer;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The actor of a change sent by a 1.0.0 client path that did not say who asked. */
const UNKNOWN_ACTOR = 'unknown';

/** A credit note's parties (its invoice's, as frozen) and the tax split of what it credits. */
function creditNoteDocument(invoice: InvoiceDocument, lines: CreditedLine[]): InvoiceParties {
  const byCurrency = new Map<string, number>();
  for (const l of lines) byCurrency.set(l.currency, (byCurrency.get(l.currency) ?? 0) + l.amount);
  const splits = [...byCurrency].sort(([a], [b]) => (a < b ? -1 : 1)).map(([currency, gross]) => splitCredit(gross, currency, invoice));
  return {
    seller: invoice.seller,
    buyer: invoice.buyer,
    taxes: splits.flatMap((s) => s.taxes.filter((t) => t.net !== 0 || t.tax !== 0)),
    totals: splits.map((s) => s.total),
  };
}

/** The account after `apply` changed its amounts or dates: status derived, saved, read back. */
/** `actor`: who made the change that settles it (the paid event carries it). */
async function settle(tx: Queryable, before: InvoiceAccount, dates: AccountDates, paidAt: string, actor = SYSTEM): Promise<InvoiceAccount> {
  const amounts = (await readAccount(tx, before.bill_id))!.amounts;
  const status = statusOf({ ...before, ...dates, amounts });
  await saveAccount(tx, before.bill_id, status, { ...dates, paid_at: paidAt });
  const after = (await readAccount(tx, before.bill_id))!;
  if (after.status === 'paid' && before.status !== 'paid') await emitEvent(tx, 'invoice.paid', after, { actor });
  return after;
}

/**
 * Opens the account of a just-numbered invoice (or of one numbered before accounts existed) and
 * records `invoice.finalized`; an invoice with nothing due is paid at once. Idempotent.
 */
export async function finalizeAccount(tx: Queryable, billId: string, now: Date): Promise<InvoiceAccount> {
  if (await openAccount(tx, billId)) {
    const opened = (await readAccount(tx, billId))!;
    await emitEvent(tx, 'invoice.finalized', opened);
    if (statusOf(opened) !== 'open') return settle(tx, opened, {}, now.toISOString());
    return opened;
  }
  return (await readAccount(tx, billId))!;
}

/** What the lifecycle starts from: the account (opened if need be) and the credit notes not yet emailed. */
export async function loadAccount(db: Db, billId: string): Promise<{ account: InvoiceAccount; unsent: string[] }> {
  const account = await inTransaction(db, async (tx) => {
    const exists = await tx.query('SELECT 1 FROM invoices WHERE bill_id = $1', [billId]);
    if (exists.rowCount === 0) throw failedPrecondition(`the invoice of bill ${billId} is not finalized yet`);
    return finalizeAccount(tx, billId, new Date());
  });
  return { account, unsent: await unsentCreditNotes(db, billId) };
}

async function lockAccount(tx: Queryable, billId: string): Promise<InvoiceAccount> {
  // The lock first, then the read in a statement of its own: a read that waited for the lock
  // would otherwise see the balances as they were before the change it waited for.
  await tx.query('SELECT 1 FROM invoice_accounts WHERE bill_id = $1 FOR UPDATE', [billId]);
  const account = await readAccount(tx, billId);
  if (!account) throw failedPrecondition(`the invoice of bill ${billId} is not finalized yet`);
  return account;
}

/** The same id (idempotency key) sent with another request than the one that made the record. */
const keyReused = (what: string) =>
  new AppError('already_exists', `this idempotency key already recorded a different ${what}; use a new key for a new request`, {
    field: 'idempotency_key',
  });

/** Records a payment once (by its id); refused when it would pay more than is due in its currency. */
export async function applyPayment(
  db: Db,
  input: PaymentInput & { bill_id: string; payment_id: string; request_fingerprint: string; actor?: string },
): Promise<PaymentRecorded> {
  return inTransaction(db, async (tx) => {
    const before = await lockAccount(tx, input.bill_id);
    const existing = await findPayment(tx, input.payment_id);
    if (existing) {
      if (existing.request_fingerprint !== input.request_fingerprint || existing.payment.bill_id !== input.bill_id)
        throw keyReused('payment');
      return { payment: existing.payment, invoice: before };
    }
    checkPayment(before.status, before.amounts, input);
    const { payment, isNew } = await insertPayment(tx, { ...input });
    if (!isNew) throw new AppError('aborted', `payment ${input.payment_id} was recorded concurrently; retry with the same key`);
    await addToBalance(tx, input.bill_id, input.currency, 'paid', input.amount);
    const actor = input.actor ?? UNKNOWN_ACTOR;
    const invoice = await settle(tx, before, {}, input.paid_at, actor);
    await emitEvent(tx, 'invoice.payment_recorded', { payment, invoice }, { actor });
    await recordAudit(tx, {
      bill_id: input.bill_id,
      subject: 'payment',
      subject_id: payment.payment_id,
      action: 'recorded',
      actor,
      data: { amount: payment.amount, currency: payment.currency, reference: payment.reference },
    });
    return { payment, invoice };
  });
}

/** Issues a credit note once (by its id): numbered CN-<year>-<6 digits>, rendered, in one transaction. */
async function creditInTransaction(
  tx: Queryable,
  deps: AccountDeps,
  before: InvoiceAccount,
  id: string,
  kind: CreditNote['kind'],
  input: CreditNoteInput,
  dates: AccountDates,
  requestFingerprint: string,
  actor: string,
): Promise<{ credit_note: CreditNote; invoice: InvoiceAccount }> {
  const billId = before.bill_id;
  const lines = creditLines(
    before.status,
    before.amounts,
    input,
    kind === 'void' ? `Void of invoice ${before.invoice_number}` : 'Credited in full',
  );
  const now = new Date();
  const sequence = `CN-${now.getUTCFullYear()}`;
  const { value, number } = await takeNumber(tx, sequence);
  const invoice = (await loadInvoiceDocument(tx, billId, 0, deps.config))!;
  const document = creditNoteDocument(invoice, lines);
  const pdf = await renderCreditNotePdf(
    {
      ...document,
      credit_note_number: number,
      invoice_number: before.invoice_number,
      invoice_issued_at: invoice.issued_at,
      kind,
      reason: input.reason,
      issued_at: now.toISOString(),
      bill_id: billId,
      lines,
    },
    { logo: sellerLogo(deps.config) },
  );
  await insertCreditNote(tx, {
    credit_note_id: id,
    bill_id: billId,
    credit_note_number: number,
    sequence,
    sequence_value: value,
    kind,
    reason: input.reason,
    request_fingerprint: requestFingerprint,
    issued_at: now.toISOString(),
    lines,
    document,
    pdf,
    pdf_sha256: sha256(pdf),
  });
  for (const line of lines) await addToBalance(tx, billId, line.currency, 'credited', line.amount);
  const after = await settle(tx, before, dates, now.toISOString(), actor);
  const creditNote = (await findCreditNote(tx, id))!;
  await emitEvent(tx, 'credit_note.issued', { credit_note: creditNote, invoice: after }, { actor });
  await recordAudit(tx, {
    bill_id: billId,
    subject: 'credit_note',
    subject_id: number,
    action: `issued (${kind})`,
    actor,
    reason: input.reason,
    data: { lines, taxes: creditNote.taxes },
  });
  return { credit_note: creditNote, invoice: after };
}

export async function issueCreditNote(
  deps: AccountDeps,
  input: { bill_id: string; credit_note_id: string; note: CreditNoteInput; request_fingerprint: string; actor?: string },
): Promise<CreditNoteIssued> {
  return inTransaction(deps.db, async (tx) => {
    const before = await lockAccount(tx, input.bill_id);
    const existing = await findCreditNoteWithFingerprint(tx, input.credit_note_id);
    if (existing) {
      if (existing.request_fingerprint !== input.request_fingerprint || existing.credit_note.bill_id !== input.bill_id)
        throw keyReused('credit note');
      return { credit_note: existing.credit_note, invoice: before };
    }
    const kind = input.note.full ? 'full' : 'partial';
    return creditInTransaction(
      tx,
      deps,
      before,
      input.credit_note_id,
      kind,
      input.note,
      {},
      input.request_fingerprint,
      input.actor ?? UNKNOWN_ACTOR,
    );
  });
}

/**
 * Voids an unpaid invoice: a credit note for everything still due, and status `void`. The invoice
 * keeps its number and PDF. Voiding a void invoice answers it as it is.
 */
export async function voidInvoice(
  deps: AccountDeps,
  input: { bill_id: string; credit_note_id: string; reason: string | null; request_fingerprint: string; actor?: string },
): Promise<InvoiceVoided> {
  return inTransaction(deps.db, async (tx) => {
    const before = await lockAccount(tx, input.bill_id);
    if (before.status === 'void') {
      const voidNote = (await listCreditNotes(tx, input.bill_id)).find((n) => n.kind === 'void') ?? null;
      return { invoice: before, credit_note: voidNote };
    }
    if (before.amounts.some((a) => a.paid > 0)) {
      throw failedPrecondition('the invoice has payments: only an unpaid invoice can be voided; issue a credit note instead', {
        status: before.status,
      });
    }
    const voidedAt = new Date().toISOString();
    let result: InvoiceVoided;
    if (before.amounts.some((a) => a.due > 0)) {
      const issued = await creditInTransaction(
        tx,
        deps,
        before,
        input.credit_note_id,
        'void',
        { full: true, reason: input.reason },
        { voided_at: voidedAt },
        input.request_fingerprint,
        input.actor ?? UNKNOWN_ACTOR,
      );
      result = { invoice: issued.invoice, credit_note: issued.credit_note };
    } else {
      result = { invoice: await settle(tx, before, { voided_at: voidedAt }, voidedAt, input.actor ?? UNKNOWN_ACTOR), credit_note: null };
    }
    await emitEvent(tx, 'invoice.voided', result.invoice, { actor: input.actor ?? UNKNOWN_ACTOR });
    await recordAudit(tx, {
      bill_id: input.bill_id,
      subject: 'invoice',
      subject_id: before.invoice_number,
      action: 'voided',
      actor: input.actor ?? UNKNOWN_ACTOR,
      reason: input.reason,
    });
    return result;
  });
}

/** Writes an invoice off as uncollectible (it stays payable); idempotent. */
export async function markUncollectible(
  db: Db,
  billId: string,
  actor = UNKNOWN_ACTOR,
  reason: string | null = null,
): Promise<InvoiceAccount> {
  return inTransaction(db, async (tx) => {
    const before = await lockAccount(tx, billId);
    if (before.status === 'uncollectible') return before;
    if (before.status === 'paid' || before.status === 'void') {
      throw failedPrecondition(`the invoice is ${before.status}: nothing is due to write off`, { status: before.status });
    }
    const after = await settle(tx, before, { uncollectible_at: new Date().toISOString() }, new Date().toISOString(), actor);
    await emitEvent(tx, 'invoice.marked_uncollectible', after, { actor });
    await recordAudit(tx, {
      bill_id: billId,
      subject: 'invoice',
      subject_id: before.invoice_number,
      action: 'marked uncollectible',
      actor,
      reason,
    });
    return after;
  });
}

/**
 * At due_at, an invoice with something still due becomes overdue (once). `at` is the workflow's
 * time, whose timer fired: a worker clock behind the server's must not make it wait again.
 */
export async function markOverdue(db: Db, billId: string, at: string): Promise<InvoiceAccount> {
  return inTransaction(db, async (tx) => {
    const before = await lockAccount(tx, billId);
    const now = new Date(Math.max(Date.parse(at), Date.parse(before.due_at)));
    if (before.overdue_at || (before.status !== 'open' && before.status !== 'partially_paid')) return before;
    const after = await settle(tx, before, { overdue_at: now.toISOString() }, now.toISOString());
    if (after.status === 'overdue') await emitEvent(tx, 'invoice.overdue', after);
    return after;
  });
}

/** Emails a credit note once, under its row lock (as invoices are); skipped when the bill has no email. */
export async function sendCreditNote(deps: AccountDeps, creditNoteId: string): Promise<'sent' | 'skipped'> {
  return inTransaction(deps.db, async (tx) => {
    const mail = await lockCreditNoteMail(tx, creditNoteId);
    if (!mail) throw failedPrecondition(`credit note ${creditNoteId} does not exist`);
    if (mail.email_status !== 'pending') return mail.email_status;
    if (!mail.customer_email) {
      await recordCreditNoteMail(tx, creditNoteId, { status: 'skipped', recipient: null, smtp_message_id: null, sent_at: null });
      return 'skipped';
    }
    const from = deps.config.invoice.from;
    const sent = await deps.mailer.send({
      from,
      to: mail.customer_email,
      subject: `Credit note ${mail.credit_note_number} for invoice ${mail.invoice_number}`,
      text: [
        'Hello,',
        '',
        `attached is credit note ${mail.credit_note_number} for invoice ${mail.invoice_number}.`,
        '',
        issuerName(from),
      ].join('\n'),
      messageId: `<${mail.credit_note_number}.${creditNoteId.slice(0, 8)}@${mailDomain(from)}>`,
      attachments: [{ filename: `${mail.credit_note_number}.pdf`, content: mail.pdf, contentType: 'application/pdf' }],
    });
    await recordCreditNoteMail(tx, creditNoteId, {
      status: 'sent',
      recipient: mail.customer_email,
      smtp_message_id: sent.messageId,
      sent_at: new Date(),
    });
    return 'sent';
  });
}
