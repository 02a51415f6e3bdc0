/** Invoice endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { currentRequest, type APICallMeta } from 'encore.dev';
import { api, type Header } from 'encore.dev/api';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { checkScope, run, encoreDeps, sendError } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import { getInvoicePdf, retryInvoice } from './invoices';
import type { RetryInvoiceResponse } from './types';

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
  billId: string;
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
