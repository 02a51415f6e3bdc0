/**
 * Renders an invoice PDF with pdfkit. The font is embedded (DejaVu Sans) because descriptions and
 * emails may hold any script, which the PDF standard fonts cannot show.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import PDFDocument from 'pdfkit';
import { appRoot } from '../core/app-root';
import { formatMinorUnits } from '../core/money';
import type { InvoiceSource } from './store';

export interface InvoiceDocument extends InvoiceSource {
  invoice_number: string;
  issued_at: string;
  /** Who issues it, shown in the header (the From name of invoice emails). */
  issuer: string;
  /** When payment is due (issue date plus the bill's payment terms). */
  due_at: string | null;
}

/** The period an invoice covers: to its close, or to its period's end for a bill closed after it (a draft). */
export const periodShown = (bill: { billing_period_end: string; closed_at: string }) =>
  bill.closed_at < bill.billing_period_end ? bill.closed_at : bill.billing_period_end;

// Read once per process; pdfkit embeds only the glyphs a document uses.
// Resolved from the project root: the bundle Encore runs is an ES module, without `require`.
const fromRoot = createRequire(path.join(appRoot(), 'package.json'));
const FONT = readFileSync(fromRoot.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf'));
const FONT_BOLD = readFileSync(fromRoot.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf'));

const MARGIN = 50;
const COLUMNS = { index: 50, date: 90, description: 200, amountRight: 545 };
const DESCRIPTION_WIDTH = 230;

/** "2026-11-21 14:03 UTC": times on an invoice are UTC, whatever the server's zone. */
export const utcMinute = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC`;
export const utcDate = (iso: string) => iso.slice(0, 10);

/** An A4 document with our fonts, and its bytes once `doc.end()` is called. */
export function newDocument(title: string, author: string, created: string): { doc: PDFKit.PDFDocument; done: Promise<Buffer> } {
  const doc = new PDFDocument({ size: 'A4', margin: MARGIN, info: { Title: title, Author: author, CreationDate: new Date(created) } });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  doc.registerFont('body', FONT);
  doc.registerFont('bold', FONT_BOLD);
  return { doc, done };
}

/** Label and value rows under a document's title. */
export function writeFacts(doc: PDFKit.PDFDocument, facts: [string, string][]): void {
  for (const [label, value] of facts) {
    const y = doc.y;
    doc.font('bold').fontSize(10).text(label, MARGIN, y, { width: 110 });
    doc.font('body').text(value, MARGIN + 120, y, { width: 375 });
    doc.moveDown(0.3);
  }
  doc.moveDown();
}

export function renderInvoicePdf(inv: InvoiceDocument): Promise<Buffer> {
  const { doc, done } = newDocument(`Invoice ${inv.invoice_number}`, inv.issuer, inv.issued_at);
  doc.font('bold').fontSize(20).text('Invoice', MARGIN, MARGIN);
  doc.font('body').fontSize(9).text(inv.issuer, { align: 'right' });
  doc.moveDown();

  const facts: [string, string][] = [
    ['Invoice number', inv.invoice_number],
    ['Issue date', utcDate(inv.issued_at)],
    ['Bill', inv.bill.bill_id],
    ['Customer', inv.bill.customer_email ?? '-'],
    ['Billing period', `${utcMinute(inv.bill.billing_period_start)} – ${utcMinute(periodShown(inv.bill))}`],
  ];
  if (inv.due_at) facts.push(['Due date', utcDate(inv.due_at)]);
  if (inv.bill.description) facts.push(['Description', inv.bill.description]);
  writeFacts(doc, facts);

  const bottom = () => doc.page.height - MARGIN;
  const header = () => {
    const y = doc.y;
    doc.font('bold').fontSize(9);
    doc.text('#', COLUMNS.index, y);
    doc.text('Date (UTC)', COLUMNS.date, y);
    doc.text('Description', COLUMNS.description, y);
    doc.text('Amount', COLUMNS.amountRight - 120, y, { width: 120, align: 'right' });
    doc
      .moveTo(MARGIN, doc.y + 2)
      .lineTo(COLUMNS.amountRight, doc.y + 2)
      .stroke();
    doc.y += 6;
    doc.font('body');
  };
  header();
  for (const line of inv.lines) {
    const height = Math.max(doc.heightOfString(line.description, { width: DESCRIPTION_WIDTH }), doc.currentLineHeight());
    if (doc.y + height > bottom()) {
      doc.addPage();
      header();
    }
    const y = doc.y;
    doc.text(String(line.position), COLUMNS.index, y);
    doc.text(utcMinute(line.created_at).slice(0, 16), COLUMNS.date, y);
    doc.text(formatMinorUnits(line.amount, line.currency), COLUMNS.amountRight - 120, y, { width: 120, align: 'right' });
    doc.text(line.description, COLUMNS.description, y, { width: DESCRIPTION_WIDTH });
    doc.y = y + height + 3;
  }
  if (inv.lines.length === 0) doc.text('No charges in this period.', COLUMNS.description, doc.y);
  const unlisted = inv.line_item_count - inv.lines.length;
  if (unlisted > 0) {
    doc
      .moveDown(0.5)
      .text(
        `… and ${unlisted} more line items, included in the totals below (GET /bills/${inv.bill.bill_id}/line-items lists them all).`,
        MARGIN,
        doc.y,
        { width: COLUMNS.amountRight - MARGIN },
      );
  }

  if (doc.y + 40 + 16 * inv.totals.length > bottom()) doc.addPage();
  doc.moveDown();
  doc.moveTo(MARGIN, doc.y).lineTo(COLUMNS.amountRight, doc.y).stroke();
  doc.moveDown(0.5);
  for (const t of inv.totals) {
    const y = doc.y;
    doc.font('bold').fontSize(11).text(`Total ${t.currency}`, COLUMNS.description, y);
    doc
      .font('body')
      .fontSize(9)
      .text(`${t.count} line item${t.count === 1 ? '' : 's'}`, COLUMNS.description + 110, y + 2);
    doc
      .font('bold')
      .fontSize(11)
      .text(formatMinorUnits(t.amount, t.currency), COLUMNS.amountRight - 160, y, { width: 160, align: 'right' });
    doc.moveDown(0.4);
  }

  doc.end();
  return done;
}
