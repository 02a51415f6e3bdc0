/**
 * The invoice and credit note PDFs, read back as text (pdf.js, as a mail client's viewer would):
 * what Directive 2006/112/EC art. 226 asks an invoice to show, for the kinds of buyer we bill.
 * Documents are built by hand; their amounts come from invoices/tax.ts, as issued ones do.
 */
import { formatMinorUnits } from '../../core/money';
import { renderCreditNotePdf } from '../../invoices/credit-note-pdf';
import type {
  AppliedTaxRate,
  Buyer,
  CreditNoteDocument,
  CurrencyTotals,
  DocumentLine,
  InvoiceDocument,
  Seller,
  TaxSubtotal,
  UnlistedLines,
} from '../../invoices/document';
import { renderInvoicePdf } from '../../invoices/invoice-pdf';
import { EXEMPT_RATE, splitCredit, taxDocument } from '../../invoices/tax';
import { pdfText } from '../helpers/smtp';

// 120×40 px, three colours: a ring and two bars.
const LOGO = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAHgAAAAoCAMAAAACNM4XAAAACVBMVEX///8AgIAgMECzOZ53AAAAl0lEQVR42u3YQQ6AIAxE0Y73P7RLF1KBpMMn6iwx4SVKakvEn4gQYV5h1KW2hMhqh3LtssTIEiSPwkdJUjdSuRhuIs1FH9wpYjY4+fAmOD2/9wcmOD/s34VN1WMx/LQ7Jb/0Vc/Ams7ecL9y1cITtdoG9/5OPljjiwXweAdSDe/f7L2nr+YmCW524qZFcD7mbgTIO5BlOQHWzgiz4ccRTQAAAABJRU5ErkJggg==',
  'base64',
);

const VAT: AppliedTaxRate = { code: 'DE-VAT', name: 'VAT', percentage: '19', category: 'S', exemption_reason: null };
const REDUCED: AppliedTaxRate = { code: 'DE-VAT-RED', name: 'Reduced VAT', percentage: '7', category: 'S', exemption_reason: null };

const seller: Seller = {
  name: 'Nordlicht Abrechnung GmbH',
  address: { line1: 'Friedrichstraße 123', line2: 'Aufgang B, 3. OG', city: 'Berlin', postal_code: '10117', country: 'DE', region: null },
  tax_id: 'DE136695976',
  email: 'billing@nordlicht.example',
  payment: {
    text: 'Bank transfer only; card payments are not accepted.',
    bank_name: 'Commerzbank Berlin',
    iban: 'DE89370400440532013000',
    bic: 'COBADEFFXXX',
  },
};

const company: Buyer = {
  customer_id: 'cus_acme',
  name: 'Société Générale des Essais SARL',
  email: 'comptabilite@essais.example',
  address: { line1: '12 rue de la Paix', line2: null, city: 'Paris', postal_code: '75002', country: 'FR', region: null },
  tax_id: 'FR40303265045',
  tax_exempt: false,
};

type Item = Omit<DocumentLine, 'position' | 'created_at'>;
const line = (amount: number, currency: string, rate: AppliedTaxRate | null, description = `usage ${currency}`): Item => ({
  description,
  amount,
  currency,
  tax_rate: rate,
});

/** An invoice of these lines (and the unlisted), its taxes and totals computed as issuing computes them. */
function invoice(buyer: Buyer, items: Item[], number = 'INV-2026-000042', unlisted: UnlistedLines[] = []): InvoiceDocument {
  const lines = items.map((item, i) => ({
    ...item,
    position: i + 1,
    created_at: `2026-11-${String(1 + (i % 28)).padStart(2, '0')}T09:30:00.000Z`,
  }));
  return {
    seller,
    buyer,
    ...taxDocument([...lines, ...unlisted].map((l) => ({ currency: l.currency, rate: l.tax_rate, net: l.amount }))),
    invoice_number: number,
    issued_at: '2026-12-01T08:00:00.000Z',
    due_at: '2026-12-31T08:00:00.000Z',
    payment_terms: 'P30D',
    bill_id: 'bill-2026-11-acme',
    description: 'Platform usage, November 2026',
    period: { start: '2026-11-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' },
    lines,
    unlisted,
  };
}

const twoRatesTwoCurrencies = () =>
  invoice(company, [
    line(100_000, 'EUR', VAT, 'API requests — 1,000,000 calls at 0.10 EUR per thousand'),
    line(25_050, 'EUR', REDUCED, 'Printed handbook'),
    line(4_999, 'EUR', VAT),
    line(1_234_567, 'USD', VAT, 'Dedicated cluster, us-east-1, 720 hours'),
    line(30_000, 'USD', REDUCED),
    line(1_500, 'USD', null, 'Pass-through fee, not subject to tax'),
  ]);

const money = (amount: number, currency: string) => formatMinorUnits(amount, currency);
const pages = (text: string) => text.split(/\n-- \d+ of \d+ --/).filter((p) => p.trim() !== '');

/** Each rate with its net and tax, and each currency's net, tax and gross. */
function expectAmounts(text: string, taxes: TaxSubtotal[], totals: CurrencyTotals[]) {
  for (const t of taxes) {
    expect(text).toContain(`${t.rate.name} (${t.rate.percentage}%) of net ${money(t.net, t.currency)}`);
    expect(text).toContain(money(t.tax, t.currency));
  }
  for (const t of totals) {
    expect(text).toContain(money(t.net, t.currency));
    expect(text).toContain(money(t.gross, t.currency));
  }
}

describe('invoice PDF', () => {
  it('shows both parties, each rate with its amounts, the totals per currency and how to pay', async () => {
    const doc = twoRatesTwoCurrencies();
    const pdf = await renderInvoicePdf(doc, { logo: LOGO });
    const text = await pdfText(pdf);

    for (const part of [
      'Invoice',
      'INV-2026-000042',
      // The seller.
      'Nordlicht Abrechnung GmbH',
      'Friedrichstraße 123',
      '10117 Berlin',
      'Germany',
      'VAT ID: DE136695976',
      'billing@nordlicht.example',
      // The buyer.
      'BILL TO',
      'Société Générale des Essais SARL',
      '12 rue de la Paix',
      '75002 Paris',
      'France',
      'VAT ID: FR40303265045',
      'comptabilite@essais.example',
      // The facts.
      '2026-12-01',
      '2026-11-01 00:00 UTC – 2026-12-01 00:00 UTC',
      'bill-2026-11-acme',
      'Platform usage, November 2026',
      'Printed handbook',
      'Reduced VAT (7%)',
      // How to pay.
      'Please pay',
      'by 2026-12-31',
      'DE89 3704 0044 0532 0130 00',
      'COBADEFFXXX',
      'Commerzbank Berlin',
      'Invoice INV-2026-000042 · page 1 of 1',
    ]) {
      expect(text).toContain(part);
    }
    expect(doc.taxes.map((t) => `${t.currency} ${t.rate.percentage}`)).toEqual(['EUR 19', 'EUR 7', 'USD 19', 'USD 7']);
    expectAmounts(text, doc.taxes, doc.totals);
    expect(text).toContain('Amount due EUR');
    expect(text).toContain('Amount due USD');
    // The untaxed line is listed without a rate and its net shown apart.
    expect(text).toContain('Not subject to tax, net 15.00 USD');
    // The logo is embedded as an image.
    expect(pdf.toString('latin1')).toContain('/Subtype /Image');
  });

  it('for a tax-exempt buyer, shows the exempt rate and why no tax is charged', async () => {
    const exempt: Buyer = { ...company, name: 'Stiftung Offene Schulen', tax_id: 'DE811907980', tax_exempt: true };
    const doc = invoice(exempt, [line(50_000, 'EUR', EXEMPT_RATE), line(7_500, 'EUR', EXEMPT_RATE)]);
    const text = await pdfText(await renderInvoicePdf(doc, { logo: null }));

    expect(text).toContain('Stiftung Offene Schulen');
    expect(text).toContain('Tax exempt');
    expect(text).toContain(EXEMPT_RATE.exemption_reason);
    expect(text).toContain(`Tax exempt (0%) of net ${money(57_500, 'EUR')}`);
    expect(text).toContain(money(0, 'EUR'));
    expect(doc.totals).toEqual([{ currency: 'EUR', net: 57_500, tax: 0, gross: 57_500 }]);
    expect(text).toContain(`Amount due EUR ${money(57_500, 'EUR')}`);
  });

  it('bills a buyer known only by an email', async () => {
    const onlyEmail: Buyer = { customer_id: null, name: null, email: 'ops@small.example', address: null, tax_id: null, tax_exempt: false };
    const doc = invoice(onlyEmail, [line(990, 'EUR', VAT)]);
    const text = await pdfText(await renderInvoicePdf(doc, { logo: LOGO }));

    expect(text).toContain('ops@small.example');
    expect(text).toContain('Nordlicht Abrechnung GmbH');
    expectAmounts(text, doc.taxes, doc.totals);
    expect(text).toContain(`Amount due EUR ${money(1178, 'EUR')}`); // 9.90 + 1.88 tax
  });

  it('flows 300 lines over pages, the table header and a numbered footer on each', async () => {
    const lines = Array.from({ length: 300 }, (_, i) =>
      line(
        100 + i,
        i % 3 === 0 ? 'USD' : 'EUR',
        i % 2 === 0 ? VAT : REDUCED,
        i % 10 === 0 ? 'A long description '.repeat(8) : `usage ${i}`,
      ),
    );
    const doc = invoice(company, lines, 'INV-2026-000300', [{ currency: 'EUR', tax_rate: VAT, count: 1200, amount: 480_000 }]);
    const text = await pdfText(await renderInvoicePdf(doc, { logo: LOGO }));

    const each = pages(text);
    expect(each.length).toBeGreaterThanOrEqual(5);
    each.forEach((page, i) => {
      expect(page).toContain(`Invoice INV-2026-000300 · page ${i + 1} of ${each.length}`);
    });
    // The table header on every page the table reaches (all but the last, which has the totals).
    const withLines = each.filter((p) => /\n\d+ 2026-11-\d\d /.test(p) || p.includes('more line items'));
    expect(withLines.length).toBeGreaterThanOrEqual(each.length - 1);
    for (const page of withLines) expect(page).toContain('# Date (UTC) Description Tax rate Net amount');
    expect(text).toContain('… and 1200 more line items at VAT (19%), included in the totals below');
    expect(text).toContain('4800.00 EUR');
    expectAmounts(text, doc.taxes, doc.totals);
  });
});

describe('credit note PDF', () => {
  it('credits its invoice by number and date, with the credited lines and their tax split per currency', async () => {
    const inv = twoRatesTwoCurrencies();
    const eur = splitCredit(50_000, 'EUR', inv);
    const usd = splitCredit(10_000, 'USD', inv);
    const note: CreditNoteDocument = {
      seller,
      buyer: company,
      taxes: [...eur.taxes, ...usd.taxes],
      totals: [eur.total, usd.total],
      credit_note_number: 'CN-2026-000007',
      invoice_number: inv.invoice_number,
      invoice_issued_at: inv.issued_at,
      kind: 'partial',
      reason: 'Service outage on 2026-11-14',
      issued_at: '2026-12-05T10:00:00.000Z',
      bill_id: inv.bill_id,
      lines: [
        { currency: 'EUR', amount: 50_000, reason: 'Goodwill for the outage' },
        { currency: 'USD', amount: 10_000, reason: 'SLA credit, cluster downtime' },
      ],
    };
    const text = await pdfText(await renderCreditNotePdf(note, { logo: LOGO }));

    for (const part of [
      'Credit note',
      'CN-2026-000007',
      'Credits invoice INV-2026-000042 of 2026-12-01.',
      'Service outage on 2026-11-14',
      'Partial credit',
      'Goodwill for the outage',
      'SLA credit, cluster downtime',
      'Nordlicht Abrechnung GmbH',
      'VAT ID: DE136695976',
      'Société Générale des Essais SARL',
      'VAT ID: FR40303265045',
      'Credit note CN-2026-000007 · page 1 of 1',
    ]) {
      expect(text).toContain(part);
    }
    expectAmounts(text, note.taxes, note.totals);
    expect(text).toContain(`Total credited EUR ${money(50_000, 'EUR')}`);
    expect(text).toContain(`Total credited USD ${money(10_000, 'USD')}`);
  });

  it('says a void invoice is void', async () => {
    const inv = twoRatesTwoCurrencies();
    const eur = splitCredit(inv.totals[0].gross, 'EUR', inv);
    const note: CreditNoteDocument = {
      ...inv,
      taxes: eur.taxes,
      totals: [eur.total],
      credit_note_number: 'CN-2026-000008',
      invoice_issued_at: inv.issued_at,
      kind: 'void',
      reason: 'billed in error',
      lines: [{ currency: 'EUR', amount: inv.totals[0].gross, reason: `Void of invoice ${inv.invoice_number}` }],
    };
    const text = await pdfText(await renderCreditNotePdf(note, { logo: null }));

    expect(text).toContain(`Invoice ${inv.invoice_number} is void.`);
    expect(text).toContain('billed in error');
    // A full credit of a currency gives back exactly its invoice's net and tax per rate.
    expect(eur.taxes).toEqual(inv.taxes.filter((t) => t.currency === 'EUR'));
    expectAmounts(text, eur.taxes, [eur.total]);
  });
});
