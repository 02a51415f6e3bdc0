import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  makeContinueAsNewFunc,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  patched,
} from '@temporalio/workflow';
import { refuseAsFailure } from '../core/refusals';
import type { PostProcessActivities } from './activities';
import { SETTLED, checkActionReason, checkCreditNoteValues, checkPaymentValues } from './account-rules';
import {
  InvoiceStatusKey,
  getInvoiceAccountQuery,
  issueCreditNoteUpdate,
  markUncollectibleUpdate,
  recordPaymentUpdate,
  voidInvoiceUpdate,
  type MarkUncollectibleInput,
  type PostProcessInput,
  type PostProcessResult,
} from './messages';
import type { InvoiceAccount, InvoiceStatus, PostProcessStep } from './types';

/** A lifecycle run continues as new before its history passes this many events. */
const MAX_HISTORY_EVENTS = 2_000;

/** The InvoiceStatus search attribute follows the invoice; its first value, pending, comes with the start. */
function showStatus(status: InvoiceStatus): void {
  upsertSearchAttributes([{ key: InvoiceStatusKey, value: status }]);
}

const { postProcessSettings } = proxyLocalActivities<PostProcessActivities>({ startToCloseTimeout: '10 seconds' });

// Bookkeeping in Postgres: retried until the database answers, like the bill's own writes.
const bookkeeping = proxyActivities<PostProcessActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

// The account's transactions: local (they answer an update within its workflow task), retried
// until the database answers; a refusal (overpayment, nothing to credit) is never retried.
const accounting = proxyLocalActivities<PostProcessActivities>({
  startToCloseTimeout: '5 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '10 seconds' },
  localRetryThreshold: '1 second',
});

// A credit note's email: retried for about a day; one that still fails stays pending in
// Postgres and is sent by the next run of the lifecycle.
const mailing = proxyActivities<PostProcessActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 hour', maximumAttempts: 30 },
});

/** The account as the lifecycle last read it, and the credit notes whose email is still to go. */
class Lifecycle {
  account: InvoiceAccount | null = null;
  unsent: string[] = [];
  /** The account change in flight (see `change`). */
  private last: Promise<unknown> = Promise.resolve();
  /** The due date's timer has fired. */
  due = false;

  /** Takes an answer of the database unless an answer it already holds is newer. */
  adopt(account: InvoiceAccount): void {
    if (!this.account || account.version >= this.account.version) this.account = account;
  }

  /**
   * Runs one account change at a time, in the order the updates arrived. Two local activities
   * of one workflow task resolving together replay in another order than they ran (the
   * chaos drill's racing payments found it: a nondeterminism error after a worker restart); one
   * at a time, each marker follows the one before. The row lock already serializes them in Postgres.
   */
  change<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.last.then(async () => {
      await condition(() => this.account !== null);
      return fn();
    });
    this.last = run.catch(() => undefined);
    return run;
  }
}

function registerAccountHandlers(billId: string, life: Lifecycle): void {
  setHandler(getInvoiceAccountQuery, () => life.account);
  setHandler(
    recordPaymentUpdate,
    (input) =>
      life.change(async () => {
        const recorded = await accounting.applyPayment({ ...input, bill_id: billId });
        life.adopt(recorded.invoice);
        return recorded;
      }),
    {
      validator: ({ payment_id: _, request_fingerprint: __, ...payment }) =>
        refuseAsFailure(() => checkPaymentValues(payment, new Date(Date.now()))),
    },
  );
  setHandler(
    issueCreditNoteUpdate,
    (input) =>
      life.change(async () => {
        const issued = await accounting.issueCreditNote({ ...input, bill_id: billId });
        life.adopt(issued.invoice);
        if (issued.credit_note.email_status === 'pending' && !life.unsent.includes(issued.credit_note.credit_note_id))
          life.unsent.push(issued.credit_note.credit_note_id);
        return issued;
      }),
    { validator: (input) => refuseAsFailure(() => checkCreditNoteValues(input.note)) },
  );
  setHandler(
    voidInvoiceUpdate,
    (input) =>
      life.change(async () => {
        const voided = await accounting.voidInvoice({ ...input, bill_id: billId });
        life.adopt(voided.invoice);
        const note = voided.credit_note;
        if (note?.email_status === 'pending' && !life.unsent.includes(note.credit_note_id)) life.unsent.push(note.credit_note_id);
        return voided;
      }),
    { validator: (input) => refuseAsFailure(() => checkActionReason(input.reason)) },
  );
  setHandler(
    markUncollectibleUpdate,
    (input?: MarkUncollectibleInput) =>
      life.change(async () => {
        const account = await accounting.markUncollectible({ bill_id: billId, ...input });
        life.adopt(account);
        return account;
      }),
    { validator: (input?: MarkUncollectibleInput) => refuseAsFailure(() => checkActionReason(input?.reason ?? null)) },
  );
}

/**
 * The invoice after its delivery: emails the credit notes it issues, marks it overdue at its due
 * date, and ends once it is settled (paid, void, uncollectible) and no email is left to send. A
 * later request starts it again (lifecycle_only), which finds everything in Postgres.
 */
async function runLifecycle(billId: string, life: Lifecycle, delivery: InvoiceStatus): Promise<PostProcessResult> {
  let dueTimer: Promise<void> | null = null;
  if (!life.account) {
    const loaded = await accounting.loadInvoiceAccount({ bill_id: billId });
    life.adopt(loaded.account);
    for (const id of loaded.unsent) if (!life.unsent.includes(id)) life.unsent.push(id);
  }
  for (;;) {
    while (life.unsent.length > 0) {
      const id = life.unsent[0];
      try {
        await mailing.sendCreditNote({ credit_note_id: id });
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        log.error('a credit note could not be emailed; it stays pending', { billId, creditNoteId: id, error: err.cause?.message });
      }
      life.unsent.shift();
    }
    const account = life.account!;
    if (SETTLED.includes(account.status)) {
      // An update still running may leave a credit note to email (a void of a written-off invoice
      // that a new run took up as it began): wait for it, and send what it left. 1.0.0 ended the
      // run at once and left that note pending for ever.
      // patch send-notes-of-late-updates: 1.1.0; deprecated in 1.2.0
      if (!patched('send-notes-of-late-updates')) break;
      await condition(allHandlersFinished);
      if (life.unsent.length === 0) break;
      continue;
    }
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength >= MAX_HISTORY_EVENTS) {
      await condition(allHandlersFinished);
      if (life.unsent.length === 0) {
        const next = makeContinueAsNewFunc<typeof closedBillPostProcessWorkflow>({ workflowTaskTimeout: info.taskTimeoutMs });
        return next({ bill_id: billId, lifecycle_only: true });
      }
      continue;
    }
    const waitsForDue = account.overdue_at === null && (account.status === 'open' || account.status === 'partially_paid');
    if (waitsForDue && (life.due || Date.parse(account.due_at) <= Date.now())) {
      // Through the same queue as the updates: one account change at a time.
      const at = new Date(Date.now()).toISOString();
      life.adopt(await life.change(() => accounting.markOverdue({ bill_id: billId, at })));
      continue;
    }
    if (waitsForDue && !dueTimer) {
      // One timer per run, never cancelled: a condition with a timeout would cancel and start one
      // at every change, and those commands would interleave with the updates' in a task.
      dueTimer = sleep(Date.parse(account.due_at) - Date.now()).then(() => {
        life.due = true;
      });
    }
    const version = account.version;
    await condition(
      () =>
        life.account!.version !== version ||
        life.unsent.length > 0 ||
        (waitsForDue && life.due) ||
        // Refused updates change nothing but still grow the history.
        workflowInfo().continueAsNewSuggested ||
        workflowInfo().historyLength >= MAX_HISTORY_EVENTS,
    );
  }
  await condition(allHandlersFinished);
  // A request that arrived while the run ended is answered above; one after it starts a new run.
  return { status: delivery, invoice_number: life.account!.invoice_number, payment_status: life.account!.status };
}

/**
 * Runs after a bill closed, as an abandoned child with its own id, so closing never waits for it:
 * turns the closed bill into an invoice PDF and emails it, then lives on as the invoice's
 * lifecycle. Each step is idempotent; when a step runs out of attempts the invoice is marked
 * `failed` and `POST /bills/:billId/invoice/retry` starts this workflow again, which resumes at
 * the step that failed.
 */
export async function closedBillPostProcessWorkflow(input: PostProcessInput): Promise<PostProcessResult> {
  const { bill_id } = input;
  const life = new Lifecycle();
  registerAccountHandlers(bill_id, life);
  if (input.lifecycle_only) return runLifecycle(bill_id, life, 'sent');

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
  if (begun === 'no_invoice') return { status: begun, invoice_number: null, payment_status: null };
  if (begun === 'sent' || begun === 'skipped') return runLifecycle(bill_id, life, begun);

  let step: PostProcessStep = 'generate';
  let delivered: InvoiceStatus;
  try {
    const generated = await steps.generateInvoice({ bill_id });
    // A bill closed with nothing on it gets no invoice: nothing to send, nothing due, no lifecycle.
    // 1.0.0 numbered it and sent an invoice of nothing (and invoice.paid).
    // patch empty-bills-have-no-invoice: 1.1.0; deprecated in 1.2.0
    if (generated.invoice_number === null && patched('empty-bills-have-no-invoice')) {
      showStatus('no_invoice');
      await condition(allHandlersFinished);
      return { status: 'no_invoice', invoice_number: null, payment_status: null };
    }
    showStatus('generated');
    // Finalized: from here on its account takes payments, also while the email is retried.
    const loaded = await accounting.loadInvoiceAccount({ bill_id });
    life.adopt(loaded.account);
    life.unsent.push(...loaded.unsent.filter((id) => !life.unsent.includes(id)));
    step = 'deliver';
    const delivery = await steps.deliverInvoice({ bill_id });
    showStatus(delivery.status);
    delivered = delivery.status;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const reason = err.cause?.message ?? err.message;
    await bookkeeping.recordPostProcessFailure({ bill_id, step, error: reason });
    showStatus('failed');
    if (!life.account) {
      await condition(allHandlersFinished);
      // Failed in Temporal's UI too, with the reason, where an operator looks first.
      throw ApplicationFailure.nonRetryable(`invoice ${step} failed: ${reason}`, 'invoice_failed');
    }
    // Numbered, only its email failed: the invoice is due all the same, so its lifecycle goes on
    // (payments, overdue) while an operator retries the delivery (which restarts this workflow).
    delivered = 'failed';
  }
  return runLifecycle(bill_id, life, delivered);
}
