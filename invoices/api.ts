/** Invoice endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import type { ServerResponse } from 'node:http';
import { currentRequest, type APICallMeta } from 'encore.dev';
import { api, type Header } from 'encore.dev/api';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { checkScope, run, encoreDeps, sendError } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import * as invoiceAccount from './invoice-account';
import { getInvoiceFile, retryInvoice, type DocumentFile } from './invoices';
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

/** A raw endpoint's query: the first value of each parameter. */
const queryOf = (url: string | undefined) => Object.fromEntries(new URL(url ?? '/', 'http://query').searchParams);

function sendFile(resp: ServerResponse, file: DocumentFile): void {
  resp.writeHead(200, {
    'content-type': file.contentType,
    'content-disposition': `inline; filename="${file.filename}"`,
    'content-length': file.body.length,
  });
  resp.end(file.body);
}

/**
 * The invoice of a closed bill, once generated (404 while the bill is open or when it closed with
 * nothing on it, 409 before): its PDF, or with `?format=ubl` its EN 16931 UBL 2.1 e-invoice (one
 * document per currency: `&currency=` picks one when the invoice has several).
 * @contentType application/pdf application/xml
 */
export const invoicePdf = api.raw(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/invoice' },
  // Encore types a raw handler as returning void; every path of this one answers inside its try.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  async (_req, resp) => {
    try {
      checkScope('bills:read');
      const meta = currentRequest() as APICallMeta;
      const file = await getInvoiceFile(await deps(), meta.pathParams.billId, queryOf(_req.url));
      sendFile(resp, file);
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
      return invoiceAccount.recordPayment(
        await deps(),
        billId,
        body,
        idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt),
        caller.key_id,
      );
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
      return invoiceAccount.voidInvoice(
        await deps(),
        billId,
        body,
        idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt),
        caller.key_id,
      );
    }),
);

/**
 * Writes an invoice off as uncollectible; it stays payable (a payment of everything due makes it paid).
 * @additionalProperties false
 */
export interface MarkUncollectibleRequest extends InvoiceActionBody {
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
        { reason: req.reason },
        idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt),
        caller.key_id,
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
      return invoiceAccount.issueCreditNote(
        await deps(),
        billId,
        body,
        idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt),
        caller.key_id,
      );
    }),
);

/**
 * A credit note's PDF, or with `?format=ubl` (and `&currency=`) its UBL 2.1 CreditNote.
 * @contentType application/pdf application/xml
 */
export const creditNotePdf = api.raw(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/credit-notes/:creditNoteId/pdf' },
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  async (_req, resp) => {
    try {
      checkScope('bills:read');
      const meta = currentRequest() as APICallMeta;
      const file = await invoiceAccount.getCreditNoteFile(
        await deps(),
        meta.pathParams.billId,
        meta.pathParams.creditNoteId,
        queryOf(_req.url),
      );
      sendFile(resp, file);
    } catch (err) {
      sendError(resp, err);
    }
  },
);
