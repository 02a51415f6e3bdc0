import {
  ActivityFailure,
  ApplicationFailure,
  patched,
  proxyActivities,
  proxyLocalActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { PostProcessActivities } from './activities';
import { InvoiceStatusKey, type PostProcessInput, type PostProcessResult } from './messages';
import type { InvoiceStatus, PostProcessStep } from './types';

/**
 * The InvoiceStatus search attribute follows the invoice (patched: histories recorded before it
 * replay without the upserts). Its first value, pending, comes with the start.
 */
export const INVOICE_SEARCH_ATTRIBUTE = 'invoice-search-attribute';

function showStatus(status: InvoiceStatus): void {
  if (patched(INVOICE_SEARCH_ATTRIBUTE)) upsertSearchAttributes([{ key: InvoiceStatusKey, value: status }]);
}

const { postProcessSettings } = proxyLocalActivities<PostProcessActivities>({ startToCloseTimeout: '10 seconds' });

// Bookkeeping in Postgres: retried until the database answers, like the bill's own writes.
const bookkeeping = proxyActivities<PostProcessActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * Runs after a bill closed, as an abandoned child with its own id, so closing never waits for it:
 * turns the closed bill into an invoice PDF and emails it. Each step is idempotent; when a step
 * runs out of attempts the invoice is marked `failed` and `POST /bills/:billId/invoice/retry`
 * starts this workflow again, which resumes at the step that failed.
 */
export async function closedBillPostProcessWorkflow(input: PostProcessInput): Promise<PostProcessResult> {
  const { bill_id } = input;
  // Read once and recorded in history: replays see the same policy, new runs the current one.
  const settings = await postProcessSettings();
  const steps = proxyActivities<PostProcessActivities>({
    startToCloseTimeout: settings.activityTimeoutMs,
    retry: {
      initialInterval: settings.retryInitialMs,
      maximumInterval: settings.retryMaxIntervalMs,
      backoffCoefficient: 2,
      maximumAttempts: settings.maxAttempts,
    },
  });

  const begun = await bookkeeping.beginPostProcess({ bill_id, workflow_id: workflowInfo().workflowId });
  showStatus(begun);
  if (begun === 'sent' || begun === 'skipped') return { status: begun, invoice_number: null };

  let step: PostProcessStep = 'generate';
  try {
    const { invoice_number } = await steps.generateInvoice({ bill_id });
    showStatus('generated');
    step = 'deliver';
    const delivery = await steps.deliverInvoice({ bill_id });
    showStatus(delivery.status);
    return { status: delivery.status, invoice_number };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const reason = err.cause?.message ?? err.message;
    await bookkeeping.recordPostProcessFailure({ bill_id, step, error: reason });
    showStatus('failed');
    // Failed in Temporal's UI too, with the reason, where an operator looks first.
    throw ApplicationFailure.nonRetryable(`invoice ${step} failed: ${reason}`, 'invoice_failed');
  }
}
