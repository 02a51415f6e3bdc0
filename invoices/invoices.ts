/**
 * Invoice use cases, shared by the Encore endpoints and the standalone host: fetch the PDF, and
 * retry a post-process that failed (or never finished).
 */
import type { Deps } from '../core/deps';
import { idempotently } from '../core/deps';
import { AppError, billNotFound, notFound } from '../core/errors';
import { fingerprint, type IdempotencyKey } from '../core/idempotency';
import { toAppError, withDeadline, workflowStartOptions } from '../core/temporal';
import { fieldError, parseId } from '../core/validate';
import { eInvoices, type EInvoiceFile } from './e-invoice';
import { loadInvoiceDocument } from './invoice-document';
import { InvoiceStatusKey, postProcessSummary, postProcessWorkflowId } from './messages';
import { readAccount } from './account-store';
import { findInvoice, reopenFailed } from './store';
import type { InvoiceSummary, RetryInvoiceResponse } from './types';
import { closedBillPostProcessWorkflow } from './workflow';

/** A document as a raw endpoint answers it. */
export interface DocumentFile {
  contentType: 'application/pdf' | 'application/xml';
  filename: string;
  body: Buffer;
}

/**
 * `?format=pdf` (default) or `?format=ubl` (an EN 16931 UBL 2.1 document; one per currency, so a
 * document in several currencies needs `?currency=`), from a raw endpoint's query.
 */
export function documentFormat(query: Record<string, unknown>): { format: 'pdf' | 'ubl'; currency: string | null } {
  const format = query.format ?? 'pdf';
  if (format !== 'pdf' && format !== 'ubl') throw fieldError('format', 'must be pdf or ubl');
  const currency = query.currency ?? null;
  if (currency !== null && (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency))) {
    throw fieldError('currency', 'must be an ISO 4217 code of three capital letters');
  }
  return { format, currency };
}

/** The e-invoice of `currency` among a document's (one per currency). */
export function pickEInvoice(files: EInvoiceFile[], currency: string | null): DocumentFile {
  const file = currency === null && files.length === 1 ? files[0] : files.find((f) => f.currency === currency);
  if (!file) {
    const held = files.map((f) => f.currency).join(', ');
    throw fieldError(
      'currency',
      `${currency === null ? 'is required' : `${currency} is not on this document`}: its e-invoice is one UBL document per currency (${held})`,
    );
  }
  return { contentType: 'application/xml', filename: file.filename, body: file.content };
}

/** A raw endpoint's (no request type: its path and query are checked here). */
export async function getInvoiceFile(deps: Deps, billIdParam: string | undefined, query: Record<string, unknown>): Promise<DocumentFile> {
  const billId = parseId(billIdParam, 'billId');
  const { format, currency } = documentFormat(query);
  const found = await findInvoice(deps.db, billId, format === 'pdf');
  if (!found) throw billNotFound(billId);
  if (found.bill_status !== 'closed') {
    throw notFound(`bill ${billId} is open: its invoice is issued once it closes`, { bill_id: billId, bill_status: found.bill_status });
  }
  if (found.status === 'no_invoice') {
    throw notFound(`bill ${billId} closed with nothing on it: no invoice was issued`, { bill_id: billId, invoice_status: found.status });
  }
  if (format === 'ubl' && found.invoice_number) {
    const document = await loadInvoiceDocument(deps.db, billId, deps.config.invoice.pdfMaxLineItems, deps.config);
    if (document) return pickEInvoice(eInvoices(document), currency);
  }
  if (!found.pdf || !found.invoice_number) {
    // It exists soon (or after a retry): a conflict with the bill's current state, not a missing thing.
    const status = found.status ?? 'pending';
    throw new AppError('aborted', `the invoice of bill ${billId} is not generated yet (status ${status})`, {
      bill_id: billId,
      invoice_status: status,
    });
  }
  return { contentType: 'application/pdf', filename: `${found.invoice_number}.pdf`, body: found.pdf };
}

/** The payment part of an invoice's summary (null and empty before it is finalized). */
async function accountSummary(db: Deps['db'], billId: string): Promise<Pick<InvoiceSummary, 'payment_status' | 'due_at' | 'amounts'>> {
  const account = await readAccount(db, billId);
  return { payment_status: account?.status ?? null, due_at: account?.due_at ?? null, amounts: account?.amounts ?? [] };
}

/**
 * Idempotent: restarts the post-process when it failed, starts it when it is not running (a start
 * that was lost), and otherwise leaves it be. An invoice already sent (or skipped) is never sent
 * again; the answer shows it as it is.
 */
export async function retryInvoice(deps: Deps, billId: string, key: IdempotencyKey | undefined): Promise<RetryInvoiceResponse> {
  const operation = 'POST /bills/:billId/invoice/retry';
  return idempotently(deps, key, operation, fingerprint(operation, { bill_id: billId }), async () => {
    const found = await findInvoice(deps.db, billId, false);
    if (!found) throw billNotFound(billId);
    if (found.bill_status !== 'closed') {
      throw new AppError('failed_precondition', `bill ${billId} is open: there is no invoice to retry`, { bill_id: billId });
    }
    const invoice: InvoiceSummary = {
      status: found.status ?? 'pending',
      invoice_number: found.invoice_number,
      sent_at: found.sent_at,
      error: found.error,
      ...(await accountSummary(deps.db, billId)),
    };
    if (invoice.status === 'sent' || invoice.status === 'skipped') return { invoice, restarted: false };

    // Only one concurrent retry wins this update. The winner replaces the failed run, which may
    // still be finishing; every other call joins whatever runs. Both are safe because each step
    // is idempotent and the email is sent under a row lock.
    const reopened = await reopenFailed(deps.db, billId);
    try {
      await withDeadline(deps.temporal, deps.config.updateTimeoutMs, () =>
        deps.temporal.workflow.start(closedBillPostProcessWorkflow, {
          workflowId: postProcessWorkflowId(billId),
          ...workflowStartOptions(deps.config),
          args: [{ bill_id: billId }],
          workflowIdConflictPolicy: reopened ? 'TERMINATE_EXISTING' : 'USE_EXISTING',
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          typedSearchAttributes: [{ key: InvoiceStatusKey, value: reopened ?? invoice.status }],
          staticSummary: postProcessSummary(billId),
        }),
      );
    } catch (err) {
      throw toAppError(err);
    }
    return { invoice: reopened ? { ...invoice, status: reopened, error: null } : invoice, restarted: reopened !== null };
  });
}
