/** Renders a credit note PDF, laid out like the invoice it credits (same fonts, same facts block). */
import { formatMinorUnits } from '../core/money';
import { newDocument, utcDate, writeFacts } from './invoice-pdf';
import type { CreditNoteLine } from './types';

export interface CreditNoteDocument {
  credit_note_number: string;
  invoice_number: string;
  kind: 'partial' | 'full' | 'void';
  reason: string | null;
  issued_at: string;
  bill_id: string;
  customer_email: string | null;
  issuer: string;
  lines: CreditNoteLine[];
}

const LEFT = 50;
const RIGHT = 545;

export function renderCreditNotePdf(note: CreditNoteDocument): Promise<Buffer> {
  const { doc, done } = newDocument(`Credit note ${note.credit_note_number}`, note.issuer, note.issued_at);
  doc.font('bold').fontSize(20).text('Credit note', LEFT, LEFT);
  doc.font('body').fontSize(9).text(note.issuer, { align: 'right' });
  doc.moveDown();
  const facts: [string, string][] = [
    ['Credit note', note.credit_note_number],
    ['Issue date', utcDate(note.issued_at)],
    ['Credits invoice', note.invoice_number],
    ['Bill', note.bill_id],
    ['Customer', note.customer_email ?? '-'],
  ];
  if (note.reason) facts.push(['Reason', note.reason]);
  writeFacts(doc, facts);
  if (note.kind === 'void') {
    doc.font('bold').fontSize(11).text(`Invoice ${note.invoice_number} is void.`, LEFT, doc.y);
    doc.font('body').fontSize(9).text('This credit note cancels everything that was still due on it.', LEFT, doc.y);
    doc.moveDown();
  }

  const header = doc.y;
  doc.font('bold').fontSize(9);
  doc.text('#', LEFT, header);
  doc.text('Reason', LEFT + 40, header);
  doc.text('Credited', RIGHT - 120, header, { width: 120, align: 'right' });
  doc
    .moveTo(LEFT, doc.y + 2)
    .lineTo(RIGHT, doc.y + 2)
    .stroke();
  doc.y += 6;
  doc.font('body');
  note.lines.forEach((line, i) => {
    const y = doc.y;
    const height = Math.max(doc.heightOfString(line.reason, { width: 330 }), doc.currentLineHeight());
    doc.text(String(i + 1), LEFT, y);
    doc.text(formatMinorUnits(line.amount, line.currency), RIGHT - 120, y, { width: 120, align: 'right' });
    doc.text(line.reason, LEFT + 40, y, { width: 330 });
    doc.y = y + height + 3;
  });

  doc.moveDown();
  const sums = new Map<string, number>();
  for (const line of note.lines) sums.set(line.currency, (sums.get(line.currency) ?? 0) + line.amount);
  for (const [currency, amount] of [...sums].sort(([a], [b]) => a.localeCompare(b))) {
    const y = doc.y;
    doc
      .font('bold')
      .fontSize(11)
      .text(`Total credited ${currency}`, LEFT + 150, y);
    doc.text(formatMinorUnits(amount, currency), RIGHT - 160, y, { width: 160, align: 'right' });
    doc.moveDown(0.4);
  }
  doc.end();
  return done;
}
