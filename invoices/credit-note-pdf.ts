/**
 * Renders a credit note PDF, laid out like the invoice it credits (same letterhead, parties and
 * footers): which invoice it amends (art. 219 of Directive 2006/112/EC), the credited amounts, and
 * their tax split per rate and currency as the invoice was split.
 */
import { formatMinorUnits } from '../core/money';
import type { CreditNoteDocument } from './document';
import { startDocument, Table, utcDate, writeTaxTotals, writeText, type Column } from './invoice-pdf';

const KINDS: Record<CreditNoteDocument['kind'], string> = {
  partial: 'Partial credit',
  full: 'Full credit: everything still due on the invoice',
  void: 'Void: the invoice is cancelled',
};

const CREDIT_COLUMNS: Column[] = [
  { title: '#', width: 26, align: 'right' },
  { title: 'Reason', width: 0 },
  { title: 'Credited (gross)', width: 110, align: 'right' },
];

/** The credit note's PDF: the document as frozen at its issue, with the seller's logo when there is one. */
export async function renderCreditNotePdf(note: CreditNoteDocument, options: { logo: Buffer | null }): Promise<Buffer> {
  const facts: [string, string][] = [
    ['Credit note number', note.credit_note_number],
    ['Issue date', utcDate(note.issued_at)],
    ['Kind', KINDS[note.kind]],
    ['Bill', note.bill_id],
  ];
  if (note.reason) facts.push(['Reason', note.reason]);
  const { doc, finish } = startDocument({
    title: 'Credit note',
    number: note.credit_note_number,
    issued_at: note.issued_at,
    parties: note,
    logo: options.logo,
    facts,
  });
  const credits = `Credits invoice ${note.invoice_number} of ${utcDate(note.invoice_issued_at)}.`;
  const statement = note.kind === 'void' ? `${credits} Invoice ${note.invoice_number} is void.` : credits;
  writeText(doc, statement, 'bold');
  if (note.kind === 'void') writeText(doc, 'This credit note cancels everything that was still due on it.');
  doc.y += 10;

  const table = new Table(doc, CREDIT_COLUMNS);
  note.lines.forEach((line, i) => table.row([String(i + 1), line.reason, formatMinorUnits(line.amount, line.currency)]));
  table.end();
  writeTaxTotals(doc, note, (currency) => `Total credited ${currency}`);
  return finish();
}
