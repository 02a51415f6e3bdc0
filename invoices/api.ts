/** Invoice endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { currentRequest, type APICallMeta } from 'encore.dev';
import { api, type Header } from 'encore.dev/api';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { checkScope, run, encoreDeps, sendError } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import * as invoiceAccount from './invoice-account';
import { getInvoicePdf, retryInvoice } from './invoices';
import type { IdPattern, InvoiceActionBody, IssueCreditNoteBody, RecordPaymentBody } from './requests';
import type {
  CreditNoteIssued,
  InvoiceAccount,
  InvoiceAccountDetails,
  InvoiceVoided,
  PaymentRecorded,
  RetryInvoiceResponse,
} from './types';

// Bound once, at the top: Encore's parser binds a database handle to the const it initialises.
const database = SQLDatabase.named('fees');
const deps = () => encoreDeps(database);

/** The invoice PDF of a closed bill, once generated (404 while the bill is open, 409 before). */
export const invoicePdf = api.raw(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/invoice' },
  // Encore types a raw handler as returning void; every path of this one answers inside its try.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  async (_req, resp) => {
    try {
      checkScope('bills:read');
      const meta = currentRequest() as APICallMeta;
      const invoice = await getInvoicePdf(await deps(), meta.pathParams.billId);
      resp.writeHead(200, {
        'content-type': 'application/pdf',
        'content-disposition': `inline; filename="${invoice.invoice_number}.pdf"`,
        'content-length': invoice.pdf.length,
      });
      resp.end(invoice.pdf);
    } catch (err) {
      sendError(resp, err);
    }
  },
);

/** Restarts the post-process of a bill whose invoice failed; a no-op when it is running or done. */
export interface RetryInvoiceRequest {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const retry = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/invoice/retry' },
  async (req: RetryInvoiceRequest): Promise<RetryInvoiceResponse> =>
    run('bills:write', async (caller) =>
      retryInvoice(await deps(), req.billId, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt)),
    ),
);

/** A finalized invoice's account: amounts per currency, status, payments and credit notes. */
export interface GetInvoiceAccountRequest {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
}
export const account = api(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/invoice/account' },
  async (req: GetInvoiceAccountRequest): Promise<InvoiceAccountDetails> =>
    run('bills:read', async () => invoiceAccount.getInvoiceAccount(await deps(), req.billId)),
);

/**
 * Records a payment against a finalized invoice, in one currency; each currency is settled on its
 * own, and paying more than is due is refused. With an idempotency key it is recorded once.
 */
export interface RecordPaymentRequest extends RecordPaymentBody {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const payment = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/invoice/payments' },
  async (req: RecordPaymentRequest): Promise<PaymentRecorded> =>
    run('bills:write', async (caller) => {
      const { billId, idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return invoiceAccount.recordPayment(await deps(), billId, body, idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt));
    }),
);

/**
 * Voids an unpaid invoice: a credit note for everything still due, and status `void`. The invoice
 * keeps its number and PDF.
 */
export interface VoidInvoiceRequest extends InvoiceActionBody {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const voidInvoice = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/invoice/void' },
  async (req: VoidInvoiceRequest): Promise<InvoiceVoided> =>
    run('bills:write', async (caller) => {
      const { billId, idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return invoiceAccount.voidInvoice(await deps(), billId, body, idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt));
    }),
);

/**
 * Writes an invoice off as uncollectible; it stays payable (a payment of everything due makes it paid).
 * @additionalProperties false
 */
export interface MarkUncollectibleRequest {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const markUncollectible = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/invoice/mark-uncollectible' },
  async (req: MarkUncollectibleRequest): Promise<InvoiceAccount> =>
    run('bills:write', async (caller) =>
      invoiceAccount.markUncollectible(
        await deps(),
        req.billId,
        idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt),
      ),
    ),
);

/**
 * Issues a credit note (`lines`, or `full: true` for everything still due): immutable, numbered
 * CN-<year>-<6 digits>, with its own PDF and email. It lowers the amount due, never below zero.
 */
export interface IssueCreditNoteRequest extends IssueCreditNoteBody {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const creditNote = api(
  { expose: true, auth: true, method: 'POST', path: '/bills/:billId/credit-notes' },
  async (req: IssueCreditNoteRequest): Promise<CreditNoteIssued> =>
    run('bills:write', async (caller) => {
      const { billId, idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return invoiceAccount.issueCreditNote(await deps(), billId, body, idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt));
    }),
);

/** A credit note's PDF. */
export const creditNotePdf = api.raw(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/credit-notes/:creditNoteId/pdf' },
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  async (_req, resp) => {
    try {
      checkScope('bills:read');
      const meta = currentRequest() as APICallMeta;
      const note = await invoiceAccount.getCreditNotePdf(await deps(), meta.pathParams.billId, meta.pathParams.creditNoteId);
      resp.writeHead(200, {
        'content-type': 'application/pdf',
        'content-disposition': `inline; filename="${note.credit_note_number}.pdf"`,
        'content-length': note.pdf.length,
      });
      resp.end(note.pdf);
    } catch (err) {
      sendError(resp, err);
    }
  },
);
