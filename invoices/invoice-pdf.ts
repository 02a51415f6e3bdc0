/**
 * Renders invoice PDFs with pdfkit, laid out as Directive 2006/112/EC art. 226 asks an invoice to
 * read: the seller's letterhead, both parties with their tax IDs, the dates, the lines with their
 * rates, the tax per rate and currency, and how to pay. The page parts (letterhead, parties, facts,
 * a table that flows over pages, tax totals, footers) are exported for credit-note-pdf.ts.
 * The font is embedded (DejaVu Sans) because names, addresses and descriptions may hold any script,
 * which the PDF standard fonts cannot show.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { friendlyFormatIBAN } from 'ibantools';
import PDFDocument from 'pdfkit';
import { appRoot } from '../core/app-root';
import { formatMinorUnits } from '../core/money';
import type { AppliedTaxRate, Buyer, InvoiceDocument, InvoiceParties, PostalAddress, Seller } from './document';

type Pdf = PDFKit.PDFDocument;

/** The period an invoice covers: to its close, or to its period's end for a bill closed after it (a draft). */
export const periodShown = (bill: { billing_period_end: string; closed_at: string }) =>
  bill.closed_at < bill.billing_period_end ? bill.closed_at : bill.billing_period_end;

/** "2026-11-21 14:03 UTC": times on an invoice are UTC, whatever the server's zone. */
export const utcMinute = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC`;
export const utcDate = (iso: string) => iso.slice(0, 10);

// Read once per process; pdfkit embeds only the glyphs a document uses.
// Resolved from the project root: the bundle Encore runs is an ES module, without `require`.
const fromRoot = createRequire(path.join(appRoot(), 'package.json'));
const FONT = readFileSync(fromRoot.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf'));
const FONT_BOLD = readFileSync(fromRoot.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf'));

// A4 in points. Everything is placed at explicit positions: pdfkit's own flow would start a page
// wherever a text overruns, without the table header or with a footer on top of it.
const PAGE = { width: 595.28, height: 841.89, margin: 50 };
const LEFT = PAGE.margin;
const RIGHT = PAGE.width - PAGE.margin;
/** Content ends here; the footer sits below. */
const BOTTOM = PAGE.height - PAGE.margin - 18;
const COLOR = { ink: '#1f2328', muted: '#59636e', rule: '#d1d9e0', shade: '#eef1f4' };
const SIZE = { body: 9, small: 7.5, heading: 10.5, title: 22 };

const ink = (doc: Pdf, font: 'body' | 'bold', size = SIZE.body, color = COLOR.ink) => doc.font(font).fontSize(size).fillColor(color);

/**
 * The size at which `text` fits `width` on one line, at most `size`: an amount is shrunk rather
 * than wrapped (a total of billions of IDR or VND is long, and realistic).
 */
function fittingSize(doc: Pdf, font: 'body' | 'bold', text: string, width: number, size: number): number {
  const natural = doc.font(font).fontSize(size).widthOfString(text);
  // A hair of slack: pdfkit wraps a line that is exactly as wide as its box.
  return natural <= width - 0.5 ? size : Math.floor((size * (width - 0.5) * 10) / natural) / 10;
}

// DejaVu Sans's ascender (1901) over its units per em (2048): pdfkit places a line's top, not its baseline.
const DEJAVU_ASCENT = 1901 / 2048;
/** How much lower text shrunk from `size` to `shrunk` starts, to share the baseline of the text beside it. */
const baselineDrop = (size: number, shrunk: number) => (size - shrunk) * DEJAVU_ASCENT;

const rule = (doc: Pdf, y: number, from = LEFT, width = 0.5) =>
  doc.moveTo(from, y).lineTo(RIGHT, y).lineWidth(width).strokeColor(COLOR.rule).stroke();

/** Starts a new page unless `height` more points fit above the footer. */
function ensureSpace(doc: Pdf, height: number): void {
  if (doc.y + height > BOTTOM) doc.addPage();
}

/** A bold heading with its first `keep` points of content kept on the same page. */
function heading(doc: Pdf, text: string, keep: number): void {
  ensureSpace(doc, 24 + keep);
  doc.y += 8;
  ink(doc, 'bold', SIZE.heading).text(text, LEFT, doc.y, { width: RIGHT - LEFT });
  doc.y += 4;
}

/** A paragraph across the page. */
export function writeText(doc: Pdf, text: string, font: 'body' | 'bold' = 'body'): void {
  ink(doc, font).text(text, LEFT, doc.y, { width: RIGHT - LEFT });
}

/** "VAT (19%)". */
const rateLabel = (rate: AppliedTaxRate) => `${rate.name} (${rate.percentage}%)`;

// ---------------------------------------------------------------------------------------------
// The parts every document shares

/** What the first page of a document opens with. */
export interface DocumentHead {
  /** "Invoice", "Credit note". */
  title: string;
  number: string;
  issued_at: string;
  parties: InvoiceParties;
  logo: Buffer | null;
  facts: [string, string][];
}

/**
 * An A4 document opened with its letterhead, parties and facts; `finish` writes the page footers
 * ("Invoice INV-2026-000001 · page 2 of 5") and answers the document's bytes.
 */
export function startDocument(head: DocumentHead): { doc: Pdf; finish: () => Promise<Buffer> } {
  const label = `${head.title} ${head.number}`;
  // bufferPages: a footer says how many pages there are, known only once all are laid out.
  const doc = new PDFDocument({
    size: 'A4',
    margin: PAGE.margin,
    bufferPages: true,
    info: { Title: label, Author: head.parties.seller.name, CreationDate: new Date(head.issued_at) },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  doc.registerFont('body', FONT);
  doc.registerFont('bold', FONT_BOLD);
  writeLetterhead(doc, head);
  writeParties(doc, head.parties.seller, head.parties.buyer);
  writeFacts(doc, head.facts);
  return {
    doc,
    finish: () => {
      writeFooters(doc, label);
      doc.end();
      return done;
    },
  };
}

/** The seller's logo (or name) on the left, the title and number on the right, a rule below. */
function writeLetterhead(doc: Pdf, head: DocumentHead): void {
  const top = PAGE.margin;
  if (head.logo) doc.image(head.logo, LEFT, top, { fit: [150, 50] });
  else ink(doc, 'bold', 13).text(head.parties.seller.name, LEFT, top, { width: 240, height: 50, ellipsis: true });
  ink(doc, 'bold', SIZE.title).text(head.title, RIGHT - 240, top - 4, { width: 240, align: 'right' });
  ink(doc, 'body', 10, COLOR.muted).text(head.number, RIGHT - 240, top + 28, { width: 240, align: 'right' });
  rule(doc, top + 60);
  doc.y = top + 72;
}

const PARTY_GAP = 30;
const PARTY_WIDTH = (RIGHT - LEFT - PARTY_GAP) / 2;

/** Seller and buyer side by side. */
function writeParties(doc: Pdf, seller: Seller, buyer: Buyer): void {
  const top = doc.y;
  const from = writeParty(doc, 'From', sellerLines(seller), LEFT, top);
  const to = writeParty(doc, 'Bill to', buyerLines(buyer), LEFT + PARTY_WIDTH + PARTY_GAP, top);
  doc.y = Math.max(from, to) + 14;
}

/** One line of a party's block; the first (its name) is bold. */
type PartyLine = string | { bold: string };

function writeParty(doc: Pdf, label: string, lines: PartyLine[], x: number, top: number): number {
  ink(doc, 'bold', SIZE.small, COLOR.muted).text(label.toUpperCase(), x, top, { width: PARTY_WIDTH, characterSpacing: 0.5 });
  doc.y += 2;
  for (const line of lines) {
    if (typeof line === 'string') ink(doc, 'body').text(line, x, doc.y, { width: PARTY_WIDTH });
    else ink(doc, 'bold', 10).text(line.bold, x, doc.y, { width: PARTY_WIDTH });
  }
  return doc.y;
}

const regions = new Intl.DisplayNames(['en'], { type: 'region' });

/** "Germany" for DE; the code itself when it has no name. */
function countryName(code: string): string {
  try {
    return regions.of(code) ?? code;
  } catch {
    return code;
  }
}

const addressLines = (a: PostalAddress) =>
  [a.line1, a.line2, `${a.postal_code} ${a.city}`.trim(), a.region, countryName(a.country)].filter((l): l is string => !!l);

/** A VAT number starts with its country's prefix (DE, EL, XI); other registrations are tax IDs. */
const taxIdLine = (taxId: string) => `${/^[A-Z]{2}/.test(taxId) ? 'VAT ID' : 'Tax ID'}: ${taxId}`;

function sellerLines(s: Seller): PartyLine[] {
  return [{ bold: s.name }, ...addressLines(s.address), ...(s.tax_id ? [taxIdLine(s.tax_id)] : []), s.email];
}

function buyerLines(b: Buyer): PartyLine[] {
  const lines: PartyLine[] = [];
  if (b.name) lines.push({ bold: b.name });
  if (b.address) lines.push(...addressLines(b.address));
  if (b.tax_id) lines.push(taxIdLine(b.tax_id));
  if (b.email) lines.push(b.name ? b.email : { bold: b.email });
  if (b.tax_exempt) lines.push('Tax exempt');
  return lines.length > 0 ? lines : ['–'];
}

const FACT_LABEL = 110;

/** Label and value rows; long values wrap. */
function writeFacts(doc: Pdf, facts: [string, string][]): void {
  for (const [label, value] of facts) {
    const y = doc.y;
    ink(doc, 'bold', SIZE.body, COLOR.muted).text(label, LEFT, y, { width: FACT_LABEL });
    const labelEnd = doc.y;
    ink(doc, 'body').text(value, LEFT + FACT_LABEL + 10, y, { width: RIGHT - LEFT - FACT_LABEL - 10 });
    doc.y = Math.max(labelEnd, doc.y) + 2;
  }
  doc.y += 10;
}

function writeFooters(doc: Pdf, label: string): void {
  const { start, count } = doc.bufferedPageRange();
  for (let i = 0; i < count; i++) {
    doc.switchToPage(start + i);
    // The footer sits in the bottom margin: lifted while it is written, or pdfkit would add a page.
    const margin = doc.page.margins.bottom;
    doc.page.margins.bottom = 0;
    rule(doc, PAGE.height - PAGE.margin - 6);
    ink(doc, 'body', SIZE.small, COLOR.muted).text(`${label} · page ${i + 1} of ${count}`, LEFT, PAGE.height - PAGE.margin, {
      width: RIGHT - LEFT,
      align: 'center',
      lineBreak: false,
    });
    doc.page.margins.bottom = margin;
  }
}

// ---------------------------------------------------------------------------------------------
// Tables

/** A table column; width 0 takes what the others leave. */
export interface Column {
  title: string;
  width: number;
  align?: 'left' | 'right';
}

interface Cell {
  text: string;
  x: number;
  width: number;
  align?: 'left' | 'right';
}

const CELL_GAP = 8;
const CELL_PAD = 3;
/** Text inside a shaded band keeps this much off its edges. */
const INSET = 5;
// A cell this tall is cut with an ellipsis: a row never needs more than one page.
const MAX_CELL = 400;

/** A table that flows over pages, its header repeated at the top of each. */
export class Table {
  private readonly xs: number[] = [];
  private readonly widths: number[];

  constructor(
    private readonly doc: Pdf,
    private readonly columns: Column[],
  ) {
    const fixed = columns.reduce((sum, c) => sum + c.width, 0) + CELL_GAP * (columns.length - 1);
    this.widths = columns.map((c) => c.width || RIGHT - LEFT - 2 * INSET - fixed);
    let x = LEFT + INSET;
    for (const width of this.widths) {
      this.xs.push(x);
      x += width + CELL_GAP;
    }
    // The header with room for a first row, or both on the next page.
    ensureSpace(doc, 60);
    this.header();
  }

  row(cells: string[]): void {
    this.write(cells.map((text, i) => ({ text, x: this.xs[i], width: this.widths[i], align: this.columns[i].align })));
  }

  /** A text across the columns between the first and the last, with an amount in the last. */
  summary(text: string, amount: string): void {
    const last = this.columns.length - 1;
    this.write(
      [
        { text, x: this.xs[1], width: this.xs[last] - CELL_GAP - this.xs[1] },
        { text: amount, x: this.xs[last], width: this.widths[last], align: 'right' },
      ],
      COLOR.muted,
    );
  }

  /** Ends the table with some room below it. */
  end(): void {
    this.doc.y += 12;
  }

  private header(): void {
    const { doc } = this;
    const y = doc.y;
    ink(doc, 'bold', SIZE.small);
    const height = Math.max(...this.columns.map((c, i) => doc.heightOfString(c.title, { width: this.widths[i] }))) + 2 * CELL_PAD + 2;
    doc.rect(LEFT, y, RIGHT - LEFT, height).fill(COLOR.shade);
    this.columns.forEach((c, i) => {
      ink(doc, 'bold', SIZE.small).text(c.title, this.xs[i], y + CELL_PAD + 1, { width: this.widths[i], align: c.align });
    });
    doc.y = y + height;
  }

  private write(cells: Cell[], color = COLOR.ink): void {
    const { doc } = this;
    // Right-aligned cells are numbers: one line each.
    const sized = cells.map((c) => ({
      ...c,
      size: c.align === 'right' ? fittingSize(doc, 'body', c.text, c.width, SIZE.body) : SIZE.body,
    }));
    const tallest = Math.max(...sized.map((c) => ink(doc, 'body', c.size).heightOfString(c.text, { width: c.width })));
    const height = Math.min(tallest, MAX_CELL) + 2 * CELL_PAD;
    if (doc.y + height > BOTTOM) {
      doc.addPage();
      this.header();
    }
    const y = doc.y;
    for (const c of sized) {
      ink(doc, 'body', c.size, color).text(c.text, c.x, y + CELL_PAD + baselineDrop(SIZE.body, c.size), {
        width: c.width,
        align: c.align,
        height: MAX_CELL,
        ellipsis: true,
      });
    }
    rule(doc, y + height, LEFT, 0.25);
    doc.y = y + height;
  }
}

// ---------------------------------------------------------------------------------------------
// Totals

// Amounts end where the table's amounts end.
const AMOUNT_WIDTH = 110;
const AMOUNT_LEFT = RIGHT - INSET - AMOUNT_WIDTH;
const TOTALS_LEFT = RIGHT - 340;
const TOTALS_LABEL = AMOUNT_LEFT - 10 - TOTALS_LEFT;

function totalsRow(doc: Pdf, label: string, amount: string, strong = false): void {
  const y = doc.y;
  const font = strong ? 'bold' : 'body';
  const size = strong ? SIZE.heading : SIZE.body;
  const amountSize = fittingSize(doc, font, amount, AMOUNT_WIDTH, size);
  const height = ink(doc, font, size).heightOfString(label, { width: TOTALS_LABEL }) + 6;
  if (strong) doc.rect(TOTALS_LEFT - INSET, y, RIGHT - TOTALS_LEFT + INSET, height).fill(COLOR.shade);
  ink(doc, font, size).text(label, TOTALS_LEFT, y + 3, { width: TOTALS_LABEL });
  ink(doc, font, amountSize).text(amount, AMOUNT_LEFT, y + 3 + baselineDrop(size, amountSize), { width: AMOUNT_WIDTH, align: 'right' });
  doc.y = y + height;
}

/**
 * Per currency: the net, each rate's tax on its part of the net, and the gross under `grossLabel`;
 * then why an exempt rate charges nothing. A currency's block is never split over two pages.
 */
export function writeTaxTotals(doc: Pdf, parties: InvoiceParties, grossLabel: (currency: string) => string): void {
  for (const total of parties.totals) {
    const money = (amount: number) => formatMinorUnits(amount, total.currency);
    const taxes = parties.taxes.filter((t) => t.currency === total.currency);
    const rows: [string, string][] = taxes.map((t) => [`${rateLabel(t.rate)} of net ${money(t.net)}`, money(t.tax)]);
    const untaxed = total.net - taxes.reduce((sum, t) => sum + t.net, 0);
    if (untaxed !== 0) rows.push([`Not subject to tax, net ${money(untaxed)}`, money(0)]);
    ensureSpace(doc, 30 + 26 * (rows.length + 1));
    totalsRow(doc, `Net total ${total.currency}`, money(total.net));
    for (const [label, amount] of rows) totalsRow(doc, label, amount);
    doc.y += 4;
    totalsRow(doc, grossLabel(total.currency), money(total.gross), true);
    doc.y += 12;
  }
  writeExemption(doc, parties);
}

/** The reason no tax is charged, printed with the totals it explains. */
function writeExemption(doc: Pdf, parties: InvoiceParties): void {
  const reasons = new Set(
    parties.taxes.flatMap((t) => (t.rate.category === 'E' && t.rate.exemption_reason ? [t.rate.exemption_reason] : [])),
  );
  if (parties.buyer.tax_exempt && reasons.size === 0) reasons.add('The customer is tax exempt: no tax is charged.');
  for (const reason of reasons) {
    ensureSpace(doc, 30);
    writeText(doc, reason, 'bold');
    doc.y += 4;
  }
}

// ---------------------------------------------------------------------------------------------
// The invoice

const LINE_COLUMNS: Column[] = [
  { title: '#', width: 26, align: 'right' },
  { title: 'Date (UTC)', width: 58 },
  { title: 'Description', width: 0 },
  { title: 'Tax rate', width: 92 },
  { title: 'Net amount', width: 92, align: 'right' },
];

function writeLines(doc: Pdf, inv: InvoiceDocument): void {
  const table = new Table(doc, LINE_COLUMNS);
  for (const line of inv.lines) {
    table.row([
      String(line.position),
      utcDate(line.created_at),
      line.description,
      line.tax_rate ? rateLabel(line.tax_rate) : '–',
      formatMinorUnits(line.amount, line.currency),
    ]);
  }
  for (const u of inv.unlisted) {
    const items = u.count === 1 ? 'line item' : 'line items';
    const rate = u.tax_rate ? `at ${rateLabel(u.tax_rate)}` : 'without tax';
    table.summary(`… and ${u.count} more ${items} ${rate}, included in the totals below`, formatMinorUnits(u.amount, u.currency));
  }
  table.end();
}

function writePayment(doc: Pdf, inv: InvoiceDocument): void {
  const { text, bank_name, iban, bic } = inv.seller.payment;
  const due = inv.totals.map((t) => formatMinorUnits(t.gross, t.currency)).join(' and ');
  const account: [string, string][] = [
    ['Reference', inv.invoice_number],
    ...(bank_name ? [['Bank', bank_name] as [string, string]] : []),
    // Printed in groups of four, the paper format of ISO 13616.
    ...(iban ? [['IBAN', friendlyFormatIBAN(iban) ?? iban] as [string, string]] : []),
    ...(bic ? [['BIC', bic] as [string, string]] : []),
  ];
  heading(doc, 'Payment', 40 + 14 * account.length);
  writeText(doc, `Please pay ${due} by ${utcDate(inv.due_at)}, quoting ${inv.invoice_number}.`);
  if (text) writeText(doc, text);
  doc.y += 6;
  writeFacts(doc, account);
}

/** The invoice's PDF: the document as frozen at its issue, with the seller's logo when there is one. */
export async function renderInvoicePdf(inv: InvoiceDocument, options: { logo: Buffer | null }): Promise<Buffer> {
  const facts: [string, string][] = [
    ['Invoice number', inv.invoice_number],
    ['Issue date', utcDate(inv.issued_at)],
    ['Due date', utcDate(inv.due_at)],
    ['Billing period', `${utcMinute(inv.period.start)} – ${utcMinute(inv.period.end)}`],
    ['Bill', inv.bill_id],
  ];
  if (inv.description) facts.push(['Description', inv.description]);
  const { doc, finish } = startDocument({
    title: 'Invoice',
    number: inv.invoice_number,
    issued_at: inv.issued_at,
    parties: inv,
    logo: options.logo,
    facts,
  });
  writeLines(doc, inv);
  writeTaxTotals(doc, inv, (currency) => `Amount due ${currency}`);
  writePayment(doc, inv);
  return finish();
}
