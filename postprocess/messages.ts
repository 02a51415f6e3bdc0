/**
 * What the post-process workflow is called with and answers. The bill's workflow starts it as a
 * child and the invoice endpoints restart it, so both read its id and types from here.
 */
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
