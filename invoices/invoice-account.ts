/**
 * Use cases of a finalized invoice's account, shared by the Encore endpoints and the standalone
 * host: record a payment, issue a credit note, void, write off, and read it. Every change goes to
 * the invoice's lifecycle workflow as an update (Update-with-Start: a lifecycle that has ended is
 * started again), which commits it to Postgres in one transaction with its events.
 */
import { createHash } from 'node:crypto';
import { WithStartWorkflowOperation } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Actor } from '../core/audit';
import { v5 as uuidv5, v7 as uuidv7 } from 'uuid';
import type { Deps } from '../core/deps';
import { idempotently } from '../core/deps';
import { billNotFound, failedPrecondition, invalidArgument, notFound } from '../core/errors';
import { fingerprint, type IdempotencyKey } from '../core/idempotency';
import { toAppError, updateWithDeadline, workflowStartOptions } from '../core/temporal';
import { checkStorable, fieldError, parseId } from '../core/validate';
import { creditNoteInput, paymentInput } from './account-rules';
import { creditNoteDocumentOf, creditNotePdf, listCreditNotes, listPayments, readAccount } from './account-store';
import { creditNoteEInvoices } from './e-invoice';
import { documentFormat, pickEInvoice, type DocumentFile } from './invoices';
import {
  InvoiceStatusKey,
  issueCreditNoteUpdate,
  markUncollectibleUpdate,
  postProcessSummary,
  postProcessWorkflowId,
  recordPaymentUpdate,
  voidInvoiceUpdate,
} from './messages';
import { findInvoice } from './store';
import type { InvoiceActionBody, IssueCreditNoteBody, RecordPaymentBody } from './requests';
import type { CreditNoteIssued, InvoiceAccount, InvoiceAccountDetails, InvoiceVoided, PaymentRecorded } from './types';
import { closedBillPostProcessWorkflow } from './workflow';

// Fixed namespaces: an id derived from (bill, idempotency key) is the same on every retry, and a
// payment's never equals a credit note's made with the same key.
const PAYMENT_NAMESPACE = '6a0f1c52-8d0b-4f7e-9a51-3b2c7d9e4f10';
const CREDIT_NOTE_NAMESPACE = '0d5e2b7a-1f43-4c8e-b6a9-7e3f5c1d2a84';
const VOID_NAMESPACE = '9b1c4e7d-2a6f-4d30-8e5b-c4f7a1d3e962';
const UNCOLLECTIBLE_NAMESPACE = '3e8a5d21-7c4b-4f96-a0d2-5b9e6c1f8a37';

/**
 * Money moves only under an idempotency key: a payment or credit retried after a lost answer
 * must find what its first attempt recorded, never record it twice.
 */
function requireKey(key: IdempotencyKey | undefined): IdempotencyKey {
  if (!key)
    throw invalidArgument('an Idempotency-Key header is required: it makes a retry of this request apply once', {
      field: 'Idempotency-Key',
    });
  return key;
}

/** The update's id: one per record and request, so a key reused with another body is not answered from Temporal's memory of the first. */
const updateIdOf = (kind: string, id: string, requestFingerprint: string) =>
  `${kind}-${id}-${createHash('sha256').update(requestFingerprint).digest('hex').slice(0, 16)}`;

const derivedId = (namespace: string, billId: string, seed: string | undefined) => uuidv5(`${billId}\n${seed!}`, namespace);

/**
 * Sends `update` to the invoice's lifecycle, starting it when no run is there (the last one ended,
 * or the invoice was issued before lifecycles existed). Only a finalized (numbered) invoice has one.
 */
async function updateInvoice<Ret, Args extends unknown[]>(
  deps: Deps,
  billId: string,
  updateId: string,
  update: UpdateDefinition<Ret, Args>,
  ...args: Args
): Promise<Ret> {
  const found = await findInvoice(deps.db, billId, false);
  if (!found) throw billNotFound(billId);
  if (found.bill_status !== 'closed' || !found.invoice_number) {
    throw failedPrecondition(`the invoice of bill ${billId} is not finalized yet`, {
      bill_status: found.bill_status,
      invoice_status: found.status ?? (found.bill_status === 'closed' ? 'pending' : null),
    });
  }
  const startWorkflowOperation = new WithStartWorkflowOperation(closedBillPostProcessWorkflow, {
    workflowId: postProcessWorkflowId(billId),
    ...workflowStartOptions(deps.config),
    args: [{ bill_id: billId, lifecycle_only: true }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    typedSearchAttributes: [{ key: InvoiceStatusKey, value: found.status ?? 'sent' }],
    staticSummary: postProcessSummary(billId),
  });
  try {
    return await updateWithDeadline(deps.temporal, deps.config.updateTimeoutMs, () =>
      deps.temporal.workflow.executeUpdateWithStart(update as unknown as UpdateDefinition<Ret, [unknown]>, {
        args: args as unknown as [unknown],
        // The same id on a resend: Temporal takes it as the same update.
        updateId,
        startWorkflowOperation,
      }),
    );
  } catch (err) {
    throw toAppError(err);
  }
}

export async function recordPayment(
  deps: Deps,
  billId: string,
  body: RecordPaymentBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<PaymentRecorded> {
  const payment = paymentInput(body, new Date());
  const operation = 'POST /bills/:billId/invoice/payments';
  // What the client sent: a defaulted paid_at differs on every retry.
  const requested = fingerprint(operation, { bill_id: billId, ...payment, paid_at: body.paid_at ?? null });
  return idempotently(deps, requireKey(key), operation, requested, async (seed) => {
    const paymentId = derivedId(PAYMENT_NAMESPACE, billId, seed);
    const input = { ...payment, payment_id: paymentId, request_fingerprint: requested, actor };
    return updateInvoice(deps, billId, updateIdOf('payment', paymentId, requested), recordPaymentUpdate, input);
  });
}

export async function issueCreditNote(
  deps: Deps,
  billId: string,
  body: IssueCreditNoteBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<CreditNoteIssued> {
  const note = creditNoteInput(body);
  const operation = 'POST /bills/:billId/credit-notes';
  const requested = fingerprint(operation, { bill_id: billId, ...note });
  return idempotently(deps, requireKey(key), operation, requested, async (seed) => {
    const id = derivedId(CREDIT_NOTE_NAMESPACE, billId, seed);
    const input = { credit_note_id: id, note, request_fingerprint: requested, actor };
    return updateInvoice(deps, billId, updateIdOf('credit-note', id, requested), issueCreditNoteUpdate, input);
  });
}

export async function voidInvoice(
  deps: Deps,
  billId: string,
  body: InvoiceActionBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<InvoiceVoided> {
  const reason = body.reason ?? null;
  checkStorable({ reason });
  const operation = 'POST /bills/:billId/invoice/void';
  const requested = fingerprint(operation, { bill_id: billId, reason });
  return idempotently(deps, requireKey(key), operation, requested, async (seed) => {
    const id = derivedId(VOID_NAMESPACE, billId, seed);
    const input = { credit_note_id: id, reason, request_fingerprint: requested, actor };
    return updateInvoice(deps, billId, updateIdOf('void', id, requested), voidInvoiceUpdate, input);
  });
}

export async function markUncollectible(
  deps: Deps,
  billId: string,
  body: InvoiceActionBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<InvoiceAccount> {
  const reason = body.reason ?? null;
  checkStorable({ reason });
  const operation = 'POST /bills/:billId/invoice/mark-uncollectible';
  // Without a reason the fingerprint is 1.0.0's: a request that gave none is the same request.
  const requested = fingerprint(operation, reason === null ? { bill_id: billId } : { bill_id: billId, reason });
  // Idempotent by itself (a second write-off answers the first), so a key is welcome, not required.
  return idempotently(deps, key, operation, requested, async (seed) =>
    updateInvoice(
      deps,
      billId,
      `uncollectible-${seed ? derivedId(UNCOLLECTIBLE_NAMESPACE, billId, seed) : uuidv7()}`,
      markUncollectibleUpdate,
      { actor, reason },
    ),
  );
}

/** The account with its payments and credit notes, from Postgres. */
export async function getInvoiceAccount(deps: Deps, billId: string): Promise<InvoiceAccountDetails> {
  const invoice = await readAccount(deps.db, billId);
  if (!invoice) {
    const found = await findInvoice(deps.db, billId, false);
    if (!found) throw billNotFound(billId);
    throw notFound(`the invoice of bill ${billId} is not finalized yet`, { bill_status: found.bill_status, invoice_status: found.status });
  }
  const [payments, credit_notes] = await Promise.all([listPayments(deps.db, billId), listCreditNotes(deps.db, billId)]);
  return { invoice, payments, credit_notes };
}

/** A raw endpoint's (no request type: its path is checked here). */
export async function getCreditNoteFile(
  deps: Deps,
  billIdParam: string,
  creditNoteIdParam: string | undefined,
  query: Record<string, unknown>,
): Promise<DocumentFile> {
  const billId = parseId(billIdParam, 'billId');
  const id = creditNoteIdParam ?? '';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id))
    throw fieldError('creditNoteId', 'must be a credit note id (a UUID)');
  const { format, currency } = documentFormat(query);
  const found = await creditNotePdf(deps.db, billId, id.toLowerCase());
  if (!found) throw notFound(`credit note ${id} of bill ${billId} not found`, { bill_id: billId, credit_note_id: id });
  if (format === 'pdf') return { contentType: 'application/pdf', filename: `${found.number}.pdf`, body: found.pdf };
  const invoiceCurrencies = (await readAccount(deps.db, billId))?.amounts.length ?? 1;
  const document = (await creditNoteDocumentOf(deps.db, id.toLowerCase(), deps.config))!;
  return pickEInvoice(creditNoteEInvoices(document, invoiceCurrencies), currency);
}
