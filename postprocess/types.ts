/** Where a closed bill's invoice is. Open bills have none yet. */
export type InvoiceStatus = 'pending' | 'generated' | 'sent' | 'skipped' | 'failed';
export const INVOICE_STATUSES: readonly InvoiceStatus[] = ['pending', 'generated', 'sent', 'skipped', 'failed'];

/** The invoice as a bill shows it. */
export interface InvoiceSummary {
  status: InvoiceStatus;
  invoice_number: string | null;
  sent_at: string | null;
  /** Why it failed (status `failed`), or why the last delivery attempt failed while it retries. */
  error: string | null;
}

/** The step of the post-process that failed. */
export type PostProcessStep = 'generate' | 'deliver';

export interface RetryInvoiceResponse {
  invoice: InvoiceSummary;
  /** True when this call took a failed invoice up again; false when there was nothing to restart. */
  restarted: boolean;
}
