/**
 * One way to read an invoice in a test: as the API shows it (the bill's summary, the account with
 * its payments and credit notes, a PDF), its events in the outbox, and its rows, so every file
 * reads the same fields the same way.
 */
import type { InvoiceAccountDetails, InvoiceSummary } from '../../invoices/types';
import { call, eventually, inSeconds, uid, type Stack } from './stack';

/** The invoice as `GET /bills/:billId` shows it; null while the bill is open. */
export async function invoiceOf(stack: Stack, billId: string): Promise<InvoiceSummary | null> {
  const reply = await call(stack, 'GET', `/bills/${billId}`);
  expect(reply.status).toBe(200);
  return reply.body.invoice;
}

/** Polls the bill's invoice until `ready` holds (bounded), and answers it. */
export function invoiceWhen(
  stack: Stack,
  billId: string,
  ready: (invoice: InvoiceSummary) => boolean,
  timeoutMs = 30_000,
): Promise<InvoiceSummary> {
  return eventually(async () => {
    const invoice = await invoiceOf(stack, billId);
    return invoice && ready(invoice) && invoice;
  }, timeoutMs);
}

/** Finalized: numbered, its account open, so it takes payments (its email may still be going out). */
export const finalizedInvoice = (stack: Stack, billId: string, timeoutMs?: number) =>
  invoiceWhen(stack, billId, (i) => i.payment_status !== null, timeoutMs);

/**
 * Issued: finalized, and its email step recorded (sent, skipped or failed). Its post-process then
 * writes nothing more on its own; only its due date and the test's own requests change its rows.
 */
export const issuedInvoice = (stack: Stack, billId: string, timeoutMs?: number) =>
  invoiceWhen(stack, billId, (i) => i.payment_status !== null && ['sent', 'skipped', 'failed'].includes(i.status), timeoutMs);

/**
 * A bill with these line items (amount, currency), closed, and its invoice issued (see
 * issuedInvoice); `extra` goes into the create request (customer_email, payment_terms, ...).
 */
export async function issuedBill(stack: Stack, items: [number, string][], extra: Record<string, unknown> = {}): Promise<string> {
  const billId = uid();
  const created = await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), ...extra });
  expect(created.status).toBe(200);
  for (const [amount, currency] of items) {
    const added = await call(stack, 'POST', `/bills/${billId}/line-items`, { amount, currency, description: `usage ${currency}` });
    expect(added.status).toBe(200);
  }
  expect((await call(stack, 'POST', `/bills/${billId}/close`)).status).toBe(200);
  await issuedInvoice(stack, billId);
  return billId;
}

/** `GET /bills/:billId/invoice/account`: the account with its payments and credit notes. */
export async function accountOf(stack: Stack, billId: string): Promise<InvoiceAccountDetails> {
  const reply = await call(stack, 'GET', `/bills/${billId}/invoice/account`);
  expect(reply.status).toBe(200);
  return reply.body;
}

/** A PDF the API serves (an invoice's or a credit note's), checked to be one. */
export async function pdfAt(stack: Stack, path: string): Promise<Buffer> {
  const res = await fetch(stack.url + path);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/pdf');
  return Buffer.from(await res.arrayBuffer());
}

export interface OutboxEvent {
  event_id: string;
  type: string;
  /** The event's `data`: the invoice's account, or a payment or credit note with the account as `invoice`. */
  data: any;
}

/** The outbox events about a bill and its invoice, oldest first (payments and credit notes carry it as `data.invoice`). */
export async function invoiceEvents(stack: Stack, billId: string): Promise<OutboxEvent[]> {
  const { rows } = await stack.db.query<OutboxEvent>(
    `SELECT event_id, type, payload -> 'data' AS data FROM webhook_events
      WHERE payload -> 'data' ->> 'bill_id' = $1 OR payload -> 'data' -> 'invoice' ->> 'bill_id' = $1
      ORDER BY created_at, event_id`,
    [billId],
  );
  return rows;
}

/** How many outbox events of `type` the bill has. */
export const eventCount = async (stack: Stack, billId: string, type: string) =>
  (await invoiceEvents(stack, billId)).filter((e) => e.type === type).length;

/** The invoice's own rows: its number, issue time and PDF, and the delivery record beside it. */
export async function storedInvoice(stack: Stack, billId: string) {
  const { rows } = await stack.db.query<{
    invoice_number: string;
    issued_at: Date;
    has_pdf: boolean;
    delivery: Record<string, any> | null;
  }>(
    `SELECT i.invoice_number, i.issued_at, i.pdf IS NOT NULL AS has_pdf, to_jsonb(pp) AS delivery
       FROM invoices i LEFT JOIN bill_postprocess pp USING (bill_id) WHERE i.bill_id = $1`,
    [billId],
  );
  return rows[0] ?? null;
}
