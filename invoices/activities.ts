/**
 * The post-process's activities: each step idempotent, so a retry or a restarted run resumes
 * where the last one stopped. Thin on purpose: the steps live in invoicing.ts, the SQL in store.ts.
 */
import { activityLogContext } from '../core/activity-context';
import type { Config } from '../core/config';
import { inTransaction, type Db } from '../core/db';
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import { invoiceFailures } from '../core/metrics';
import { refuseAsFailureAsync } from '../core/refusals';
import { emitEvent } from '../webhooks/events';
import type { InvoiceEventData } from '../webhooks/types';
import * as account from './account-changes';
import { deliverInvoice, generateInvoice, type Delivery } from './invoicing';
import type { Mailer } from './mailer';
import { beginPostProcess, recordFailure } from './store';
import type { CreditNoteIssued, InvoiceAccount, InvoiceStatus, InvoiceVoided, PaymentRecorded, PostProcessStep } from './types';

/** The workflow reads these at its start (a local activity), so retries follow the configuration. */
export type PostProcessSettings = Config['postProcess'];

export interface PostProcessActivityDeps {
  db: Db;
  config: Config;
  mailer: Mailer;
  log: Logger;
}

/**
 * An account change that cannot succeed by retrying: a refusal of ours, or Postgres refusing the
 * data or an integrity rule (a CHECK such as credited + paid <= total, a unique id). Either fails
 * the update at once instead of retrying it for ever and holding the lifecycle's handlers open.
 */
function final<T>(fn: () => Promise<T>): Promise<T> {
  return refuseAsFailureAsync(() =>
    fn().catch((err: unknown) => {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && /^2[23]/.test(code)) {
        throw new AppError('aborted', `the invoice could not be changed as asked (${(err as Error).message}); nothing was recorded`);
      }
      throw err;
    }),
  );
}

export function createPostProcessActivities({ db, config, mailer, log }: PostProcessActivityDeps) {
  return {
    async postProcessSettings(): Promise<PostProcessSettings> {
      return { ...config.postProcess };
    },

    async beginPostProcess(input: { bill_id: string; workflow_id: string }): Promise<InvoiceStatus> {
      return beginPostProcess(db, input.bill_id, input.workflow_id);
    },

    /** invoice_number null: the bill closed with nothing on it and has no invoice. */
    async generateInvoice(input: { bill_id: string }): Promise<{ invoice_number: string | null }> {
      const result = await refuseAsFailureAsync(() => generateInvoice({ db, config, mailer }, input.bill_id));
      log.info(
        { ...activityLogContext(), bill_id: input.bill_id, invoice_number: result.invoice_number },
        result.invoice_number ? 'invoice generated' : 'no invoice: the bill closed with nothing on it',
      );
      return result;
    },

    async deliverInvoice(input: { bill_id: string }): Promise<Delivery> {
      const result = await refuseAsFailureAsync(() => deliverInvoice({ db, config, mailer }, input.bill_id));
      log.info({ ...activityLogContext(), bill_id: input.bill_id, ...result }, `invoice ${result.status}`);
      return result;
    },

    // --- The invoice's account: one transaction each; a refusal fails the update without a retry ---

    async loadInvoiceAccount(input: { bill_id: string }): Promise<{ account: InvoiceAccount; unsent: string[] }> {
      return refuseAsFailureAsync(() => account.loadAccount(db, input.bill_id));
    },

    async applyPayment(input: Parameters<typeof account.applyPayment>[1]): Promise<PaymentRecorded> {
      const recorded = await final(() => account.applyPayment(db, input));
      log.info(
        { ...activityLogContext(), bill_id: input.bill_id, payment_id: input.payment_id, status: recorded.invoice.status },
        'payment recorded',
      );
      return recorded;
    },

    async issueCreditNote(input: Parameters<typeof account.issueCreditNote>[1]): Promise<CreditNoteIssued> {
      const issued = await final(() => account.issueCreditNote({ db, config, mailer }, input));
      log.info(
        { ...activityLogContext(), bill_id: input.bill_id, credit_note: issued.credit_note.credit_note_number },
        'credit note issued',
      );
      return issued;
    },

    async voidInvoice(input: Parameters<typeof account.voidInvoice>[1]): Promise<InvoiceVoided> {
      return final(() => account.voidInvoice({ db, config, mailer }, input));
    },

    async markUncollectible(input: { bill_id: string; actor?: string; reason?: string | null }): Promise<InvoiceAccount> {
      return final(() => account.markUncollectible(db, input.bill_id, input.actor, input.reason ?? null));
    },

    async markOverdue(input: { bill_id: string; at: string }): Promise<InvoiceAccount> {
      return account.markOverdue(db, input.bill_id, input.at);
    },

    async sendCreditNote(input: { credit_note_id: string }): Promise<'sent' | 'skipped'> {
      return refuseAsFailureAsync(() => account.sendCreditNote({ db, config, mailer }, input.credit_note_id));
    },

    /** Retries are exhausted: make it visible (status, log line, counter) for an operator to retry. */
    async recordPostProcessFailure(input: { bill_id: string; step: PostProcessStep; error: string }): Promise<void> {
      const recorded = await inTransaction(db, async (tx) => {
        const failed = await recordFailure(tx, input.bill_id, input.step, input.error);
        if (failed) {
          const event: InvoiceEventData = {
            bill_id: input.bill_id,
            invoice_number: failed.invoice_number,
            status: 'failed',
            recipient: null,
            sent_at: null,
            failed_step: input.step,
            error: input.error,
          };
          await emitEvent(tx, 'invoice.failed', event);
        }
        return failed;
      });
      // Delivered meanwhile (a racing attempt), or recorded by an earlier try of this activity.
      if (!recorded) return;
      invoiceFailures.inc({ step: input.step });
      log.error(
        { ...activityLogContext(), bill_id: input.bill_id, step: input.step, error: input.error, event: 'invoice_failed' },
        'invoice post-process failed; retry with POST /bills/:billId/invoice/retry',
      );
    },
  };
}

export type PostProcessActivities = ReturnType<typeof createPostProcessActivities>;
