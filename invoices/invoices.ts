/**
 * Invoice use cases, shared by the Encore endpoints and the standalone host: fetch the PDF, and
 * retry a post-process that failed (or never finished).
 */
import type { Deps } from '../core/deps';
import { idempotently } from '../core/deps';
import { AppError, billNotFound, notFound } from '../core/errors';
import { fingerprint, type IdempotencyKey } from '../core/idempotency';
import { toAppError, withDeadline, workflowStartOptions } from '../core/temporal';
import { parseId } from '../core/validate';
import { InvoiceStatusKey, postProcessSummary, postProcessWorkflowId } from './messages';
import { readAccount } from './account-store';
import { findInvoice, reopenFailed } from './store';
import type { InvoiceSummary, RetryInvoiceResponse } from './types';
import { closedBillPostProcessWorkflow } from './workflow';

export interface InvoicePdf {
  invoice_number: string;
  pdf: Buffer;
}

/** A raw endpoint's (no request type: its path is checked here). */
export async function getInvoicePdf(deps: Deps, billIdParam: string | undefined): Promise<InvoicePdf> {
  const billId = parseId(billIdParam, 'billId');
  const found = await findInvoice(deps.db, billId, true);
  if (!found) throw billNotFound(billId);
  if (found.bill_status !== 'closed') {
    throw notFound(`bill ${billId} is open: its invoice is issued once it closes`, { bill_id: billId, bill_status: found.bill_status });
  }
  if (!found.pdf || !found.invoice_number) {
    // It exists soon (or after a retry): a conflict with the bill's current state, not a missing thing.
    const status = found.status ?? 'pending';
    throw new AppError('aborted', `the invoice of bill ${billId} is not generated yet (status ${status})`, {
      bill_id: billId,
      invoice_status: status,
    });
  }
  return { invoice_number: found.invoice_number, pdf: found.pdf };
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
