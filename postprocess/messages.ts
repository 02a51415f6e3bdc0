/**
 * What the post-process workflow is called with and answers. The bill's workflow starts it as a
 * child and the invoice endpoints restart it, so both read its id and types from here.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import type { InvoiceStatus } from './types';

/** One post-process per bill, ever: its id is derived from the bill's. */
export const postProcessWorkflowId = (billId: string) => `bill-${billId}-postprocess`;

export interface PostProcessInput {
  bill_id: string;
}

export interface PostProcessResult {
  status: InvoiceStatus;
  invoice_number: string | null;
}

/** Where the invoice is, as Temporal's tools can search it: pending, generated, sent, skipped, failed. */
export const InvoiceStatusKey = defineSearchAttributeKey('InvoiceStatus', SearchAttributeType.KEYWORD);

/** The post-process workflow's row in the UI and `temporal workflow describe`. */
export const postProcessSummary = (billId: string) => `invoice of bill ${billId}: render the PDF, email it`;
