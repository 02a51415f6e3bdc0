/**
 * The e-invoice files of a document: one EN 16931 UBL document per currency, because a UBL
 * invoice has one document currency (BT-5) and a bill may hold several. A single-currency invoice's
 * UBL carries its number; otherwise each carries `<number>-<currency>`.
 */
import type { CreditNoteDocument, InvoiceDocument } from './document';
import { renderUblCreditNote, renderUblInvoice } from './ubl';

export interface EInvoiceFile {
  currency: string;
  filename: string;
  content: Buffer;
}

const idFor = (number: string, currency: string, currencies: number) => (currencies > 1 ? `${number}-${currency}` : number);

export function eInvoices(doc: InvoiceDocument): EInvoiceFile[] {
  return doc.totals.map(({ currency }) => {
    const id = idFor(doc.invoice_number, currency, doc.totals.length);
    return { currency, filename: `${id}.xml`, content: Buffer.from(renderUblInvoice(doc, currency, id)) };
  });
}

/** `invoiceCurrencies`: how many currencies its invoice has, so each part names the e-invoice it credits. */
export function creditNoteEInvoices(doc: CreditNoteDocument, invoiceCurrencies: number): EInvoiceFile[] {
  return doc.totals.map(({ currency }) => {
    const id = idFor(doc.credit_note_number, currency, doc.totals.length);
    const invoiceId = idFor(doc.invoice_number, currency, invoiceCurrencies);
    return { currency, filename: `${id}.xml`, content: Buffer.from(renderUblCreditNote(doc, currency, id, invoiceId)) };
  });
}
