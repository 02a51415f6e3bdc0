/**
 * What the post-process workflow is called with and answers. The bill's workflow starts it as a
 * child and the invoice endpoints restart it, so both read its id and types from here.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { CreditNoteInput, PaymentInput } from './account-rules';
import type { CreditNoteIssued, InvoiceAccount, InvoiceStatus, InvoiceVoided, PaymentRecorded, PaymentStatus } from './types';

/** One post-process per bill, ever: its id is derived from the bill's. */
export const postProcessWorkflowId = (billId: string) => `bill-${billId}-postprocess`;

export interface PostProcessInput {
  bill_id: string;
  /**
   * Only the invoice's lifecycle (its account), not the post-process: a run started by a payment,
   * a credit note or a void when no run was there (the last one ended), or continued as new.
   */
  lifecycle_only?: boolean;
}

export interface PostProcessResult {
  status: InvoiceStatus;
  invoice_number: string | null;
  /** Where the invoice's money was when the run ended (null: the bill has no invoice). */
  payment_status: PaymentStatus | null;
}

/** Where the invoice is, as Temporal's tools can search it: pending, generated, sent, skipped, failed. */
export const InvoiceStatusKey = defineSearchAttributeKey('InvoiceStatus', SearchAttributeType.KEYWORD);

/** The post-process workflow's row in the UI and `temporal workflow describe`. */
export const postProcessSummary = (billId: string) => `invoice of bill ${billId}: render the PDF, email it`;

// --- The invoice's account, once finalized: updates of its lifecycle (workflow.ts) ---

/** The payment as the API parsed it, with its id (derived from the request's idempotency key). */
export interface PaymentUpdateInput extends PaymentInput {
  payment_id: string;
  /** What identified the request: the same id sent later with another body is refused. */
  request_fingerprint: string;
  /** Who asked, for the audit trail (absent in updates sent by 1.0.0). */
  actor?: string;
}

export interface CreditNoteUpdateInput {
  credit_note_id: string;
  note: CreditNoteInput;
  request_fingerprint: string;
  actor?: string;
}

export interface VoidUpdateInput {
  /** The id its credit note gets, derived like a payment's. */
  credit_note_id: string;
  reason: string | null;
  request_fingerprint: string;
  actor?: string;
}

export const recordPaymentUpdate = defineUpdate<PaymentRecorded, [PaymentUpdateInput]>('recordPaymentUpdate');
export const issueCreditNoteUpdate = defineUpdate<CreditNoteIssued, [CreditNoteUpdateInput]>('issueCreditNoteUpdate');
export const voidInvoiceUpdate = defineUpdate<InvoiceVoided, [VoidUpdateInput]>('voidInvoiceUpdate');
/** Who wrote the invoice off, and why (1.0.0 clients sent no input). */
export interface MarkUncollectibleInput {
  actor?: string;
  reason?: string | null;
}

export const markUncollectibleUpdate = defineUpdate<InvoiceAccount, [MarkUncollectibleInput]>('markUncollectibleUpdate');
/** The account as the lifecycle holds it; null until the invoice is finalized. */
export const getInvoiceAccountQuery = defineQuery<InvoiceAccount | null>('getInvoiceAccountQuery');
