/**
 * The two steps of a closed bill's post-process, each safe to run again after any crash:
 *  - generate: assign the invoice number once, render the PDF, store it once;
 *  - deliver: email it once, under a row lock, and record the delivery with the SMTP message id.
 * Domain failures are AppErrors; anything else is a transient failure the caller may retry.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../core/config';
import { inTransaction, type Db } from '../core/db';
import { AppError } from '../core/errors';
import { emitEvent } from '../webhooks/events';
import type { InvoiceEventData } from '../webhooks/types';
import { finalizeAccount } from './account-changes';
import { recordAudit, SYSTEM } from '../core/audit';
import { eInvoices } from './e-invoice';
import { freezeParties, loadInvoiceDocument } from './invoice-document';
import { periodShown, renderInvoicePdf, utcMinute } from './invoice-pdf';
import { sellerLogo } from './seller';
import { issuerName, mailDomain, type Mailer } from './mailer';
import {
  assignInvoiceNumber,
  lockDelivery,
  markGenerated,
  recordDeliveryError,
  recordNoInvoice,
  recordSent,
  recordSkipped,
  storeInvoicePdf,
} from './store';

export interface InvoicingDeps {
  db: Db;
  config: Config;
  mailer: Mailer;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/**
 * Numbers the invoice and freezes its document (parties, tax), opens its account, renders and
 * stores its PDF: each once. A bill closed with nothing on it gets no invoice (null): no number
 * is taken, so the series stays gap-free, and nothing is sent or due.
 */
export async function generateInvoice(deps: InvoicingDeps, billId: string): Promise<{ invoice_number: string | null }> {
  const { prefix, max } = { prefix: deps.config.invoice.numberPrefix, max: deps.config.invoice.pdfMaxLineItems };
  // Numbered, frozen and its account opened (invoice.finalized) in one transaction: a finalized
  // invoice always has its document and what is due on it.
  const number = await inTransaction(deps.db, async (tx) => {
    const now = new Date();
    const assigned = await assignInvoiceNumber(
      tx,
      billId,
      (d) => `${prefix}-${d.getUTCFullYear()}`,
      now,
      () => freezeParties(tx, billId, deps.config),
    );
    if (assigned === 'no_invoice') {
      await recordNoInvoice(tx, billId);
      return assigned;
    }
    if (assigned && !assigned.has_pdf) {
      const account = await finalizeAccount(tx, billId, now);
      await recordAudit(tx, {
        bill_id: billId,
        subject: 'invoice',
        subject_id: assigned.invoice_number,
        action: 'finalized',
        actor: SYSTEM,
        data: { amounts: account.amounts },
      });
    }
    return assigned;
  });
  if (!number) throw new AppError('failed_precondition', `bill ${billId} is not closed: it has no invoice`);
  if (number === 'no_invoice') return { invoice_number: null };
  if (!number.has_pdf) {
    const document = (await loadInvoiceDocument(deps.db, billId, max, deps.config))!;
    const pdf = await renderInvoicePdf(document, { logo: sellerLogo(deps.config) });
    await inTransaction(deps.db, async (tx) => {
      await storeInvoicePdf(tx, billId, pdf, sha256(pdf));
      await markGenerated(tx, billId);
    });
  } else {
    await markGenerated(deps.db, billId);
  }
  return { invoice_number: number.invoice_number };
}

/** The mail server refused or could not be reached (as opposed to a database failure). */
class SendFailure extends Error {
  constructor(readonly reason: unknown) {
    super('send failed');
  }
}

export interface Delivery {
  status: 'sent' | 'skipped';
  smtp_message_id: string | null;
}

/** SMTP answers in the 5xx range (and rejected credentials) will not change on a retry. */
function isPermanentSmtpFailure(err: unknown): boolean {
  const { responseCode, code } = err as { responseCode?: number; code?: string };
  return code === 'EAUTH' || (typeof responseCode === 'number' && responseCode >= 500 && responseCode < 600);
}

export async function deliverInvoice(deps: InvoicingDeps, billId: string): Promise<Delivery> {
  try {
    return await inTransaction(deps.db, async (tx) => {
      // Locked until commit: an attempt racing this one waits, then finds the delivery recorded.
      const state = await lockDelivery(tx, billId);
      if (!state) throw new AppError('failed_precondition', `the post-process of bill ${billId} has not begun`);
      if (state.status === 'sent' || state.status === 'skipped') {
        return { status: state.status, smtp_message_id: state.smtp_message_id };
      }
      // The bill's own address, else its customer's as the invoice froze it.
      const recipient = state.customer_email ?? state.buyer_email;
      if (!recipient) {
        await recordSkipped(tx, billId, 'the bill has no customer_email and no customer');
        return { status: 'skipped' as const, smtp_message_id: null };
      }
      if (!state.pdf || !state.invoice_number) {
        throw new AppError('failed_precondition', `the invoice of bill ${billId} has not been generated`);
      }
      const document = (await loadInvoiceDocument(tx, billId, deps.config.invoice.pdfMaxLineItems, deps.config))!;
      const from = deps.config.invoice.from;
      const messageId = `<${state.invoice_number}.${sha256(billId).slice(0, 16)}@${mailDomain(from)}>`;
      const email = {
        from,
        to: recipient,
        subject: `Invoice ${state.invoice_number}`,
        text: [
          'Hello,',
          '',
          `attached is invoice ${state.invoice_number} for bill ${billId},`,
          `billing period ${utcMinute(state.billing_period_start.toISOString())} – ${utcMinute(periodShown({ billing_period_end: state.billing_period_end.toISOString(), closed_at: state.closed_at.toISOString() }))}.`,
          '',
          issuerName(from),
        ].join('\n'),
        messageId,
        attachments: [
          { filename: `${state.invoice_number}.pdf`, content: state.pdf, contentType: 'application/pdf' as const },
          ...eInvoices(document).map((f) => ({ ...f, contentType: 'application/xml' as const })),
        ],
      };
      // The event first, in this transaction: whatever could fail in writing it fails before the
      // email goes out, so a retry never sends the invoice twice for the sake of its event.
      const sentAt = new Date();
      const event: InvoiceEventData = {
        bill_id: billId,
        invoice_number: state.invoice_number,
        status: 'sent',
        recipient,
        sent_at: sentAt.toISOString(),
        failed_step: null,
        error: null,
      };
      await emitEvent(tx, 'invoice.sent', event);
      const sent = await deps.mailer.send(email).catch((err: unknown) => {
        throw new SendFailure(err);
      });
      await recordSent(tx, billId, {
        recipient,
        smtp_message_id: sent.messageId,
        smtp_response: sent.response,
        sent_at: sentAt,
      });
      return { status: 'sent' as const, smtp_message_id: sent.messageId };
    });
  } catch (err) {
    if (!(err instanceof SendFailure)) throw err;
    const reason = `email delivery failed: ${(err.reason as Error)?.message ?? err.reason}`;
    await recordDeliveryError(deps.db, billId, reason).catch(() => undefined);
    if (isPermanentSmtpFailure(err.reason)) throw new AppError('failed_precondition', reason, { permanent: true });
    throw new Error(reason);
  }
}
