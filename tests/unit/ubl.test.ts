/**
 * The e-invoice: each rendered document passes the UBL 2.1 schema and breaks no fatal EN 16931
 * rule (CEN's schematron, as a receiver runs it), and its totals are the document's. All documents
 * are validated in one run (beforeAll): Java's start costs more than the rules.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Decimal from 'decimal.js';
import { currencyExponent } from '../../core/money';
import type {
  AppliedTaxRate,
  Buyer,
  CreditNoteDocument,
  CurrencyTotals,
  DocumentLine,
  InvoiceDocument,
  Seller,
  UnlistedLines,
} from '../../invoices/document';
import { EXEMPT_RATE, categoryOf, splitCredit, taxDocument } from '../../invoices/tax';
import { renderUblCreditNote, renderUblInvoice } from '../../invoices/ubl';
import { validateUblDocuments, xmlElements, type UblValidation, type XmlElement } from '../helpers/einvoice';

const CAC = 'urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2';
const CBC = 'urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2';
const OFFICIAL_EXAMPLE = path.join(__dirname, '..', 'fixtures', 'einvoice', 'en16931-1.3.16', 'ubl-tc434-example1.xml');

const rate = (code: string, percentage: string): AppliedTaxRate => ({
  code,
  name: `VAT ${percentage} %`,
  percentage,
  category: categoryOf(percentage),
  exemption_reason: null,
});
const VAT_19 = rate('DE-19', '19');
const VAT_7 = rate('DE-7', '7');

const seller: Seller = {
  name: 'Fees API Test GmbH',
  address: { line1: 'Friedrichstraße 100', line2: 'Aufgang B', city: 'Berlin', postal_code: '10117', country: 'DE', region: null },
  tax_id: 'DE123456788',
  email: 'billing@fees.example',
  payment: { text: 'Please quote the invoice number.', bank_name: 'Example Bank', iban: 'DE89370400440532013000', bic: 'COBADEFFXXX' },
};

/** A domestic business customer: category S needs nothing more (an FR buyer would be an intra-community supply, K). */
const buyer: Buyer = {
  customer_id: 'cus_0001',
  name: 'Kunde AG',
  email: 'ap@kunde.example',
  address: { line1: 'Marktplatz 5', line2: null, city: 'München', postal_code: '80331', country: 'DE', region: 'Bayern' },
  tax_id: 'DE999999990',
  tax_exempt: false,
};

type LineInput = Pick<DocumentLine, 'description' | 'amount' | 'currency' | 'tax_rate'>;

/** An invoice of these lines (and groups of unlisted ones), taxed as the service taxes it. */
function invoiceOf(lines: LineInput[], changes: Partial<InvoiceDocument> = {}, unlisted: UnlistedLines[] = []): InvoiceDocument {
  const listed = lines.map((l, i) => ({ ...l, position: i + 1, created_at: '2026-01-15T10:00:00.000Z' }));
  const { taxes, totals } = taxDocument([...listed, ...unlisted].map((l) => ({ currency: l.currency, rate: l.tax_rate, net: l.amount })));
  return {
    seller,
    buyer,
    taxes,
    totals,
    invoice_number: 'INV-2026-000001',
    issued_at: '2026-02-01T09:30:00.000Z',
    due_at: '2026-03-03T09:30:00.000Z',
    payment_terms: 'P30D',
    bill_id: 'bill-0001',
    description: 'Usage, January 2026',
    period: { start: '2026-01-01T00:00:00.000Z', end: '2026-02-01T00:00:00.000Z' },
    lines: listed,
    unlisted,
    ...changes,
  };
}

/** A credit of `gross` per currency of `invoice`, split as the invoice was. */
function creditOf(invoice: InvoiceDocument, gross: Record<string, number>, reason: string): CreditNoteDocument {
  const splits = Object.entries(gross).map(([currency, amount]) => splitCredit(amount, currency, invoice));
  return {
    seller: invoice.seller,
    buyer: invoice.buyer,
    taxes: splits.flatMap((s) => s.taxes),
    totals: splits.map((s) => s.total),
    credit_note_number: 'CN-2026-000001',
    invoice_number: invoice.invoice_number,
    invoice_issued_at: invoice.issued_at,
    kind: 'partial',
    reason: 'Goodwill credit agreed on the phone',
    issued_at: '2026-02-10T12:00:00.000Z',
    bill_id: invoice.bill_id,
    lines: Object.entries(gross).map(([currency, amount]) => ({ currency, amount, reason })),
  };
}

const twoRates = invoiceOf([
  { description: 'API calls, January', amount: 123_45, currency: 'EUR', tax_rate: VAT_19 },
  { description: 'Printed manual', amount: 19_99, currency: 'EUR', tax_rate: VAT_7 },
  { description: 'Support hours '.repeat(12), amount: 250_00, currency: 'EUR', tax_rate: VAT_19 },
]);
const twoCurrencies = invoiceOf([
  { description: 'API calls, January', amount: 500_00, currency: 'EUR', tax_rate: VAT_19 },
  { description: 'API calls, US region', amount: 310_17, currency: 'USD', tax_rate: VAT_19 },
  { description: 'Manual (US edition)', amount: 12_50, currency: 'USD', tax_rate: VAT_7 },
]);
const exemptBuyer = invoiceOf(
  [
    { description: 'Seats', amount: 990_00, currency: 'EUR', tax_rate: EXEMPT_RATE },
    { description: 'Storage', amount: 10_01, currency: 'EUR', tax_rate: EXEMPT_RATE },
  ],
  { buyer: { ...buyer, tax_exempt: true } },
);
const noRates = invoiceOf([
  { description: 'Reimbursed travel costs', amount: 420_00, currency: 'EUR', tax_rate: null },
  { description: 'Conference fee (paid on your behalf)', amount: 80_00, currency: 'EUR', tax_rate: null },
]);
const longBill = invoiceOf(
  [
    { description: 'Request 1', amount: 1_00, currency: 'EUR', tax_rate: VAT_19 },
    { description: 'Request 2', amount: 2_00, currency: 'EUR', tax_rate: VAT_19 },
    { description: 'Book', amount: 15_00, currency: 'EUR', tax_rate: VAT_7 },
  ],
  {},
  [
    { currency: 'EUR', tax_rate: VAT_19, count: 1234, amount: 1_234_56 },
    { currency: 'EUR', tax_rate: VAT_7, count: 1, amount: 9_99 },
  ],
);
const yen = invoiceOf([{ description: 'API calls, Tokyo region', amount: 123_457, currency: 'JPY', tax_rate: VAT_19 }]);
const noBankAccount = invoiceOf(twoRates.lines, {
  seller: { ...seller, payment: { text: 'Pay by card on fees.example/pay.', bank_name: null, iban: null, bic: null } },
});
const partialCredit = creditOf(twoRates, { EUR: 100_00 }, 'Outage on 12 January');
const twoCurrencyCredit = creditOf(twoCurrencies, { EUR: 595_00, USD: 50_00 }, 'Duplicate usage records');

interface Case {
  name: string;
  xml: string;
  totals: CurrencyTotals;
}

const invoiceCase = (name: string, doc: InvoiceDocument, currency: string, id?: string): Case => ({
  name,
  xml: renderUblInvoice(doc, currency, id),
  totals: doc.totals.find((t) => t.currency === currency)!,
});
const creditCase = (name: string, doc: CreditNoteDocument, currency: string, id?: string): Case => ({
  name,
  xml: renderUblCreditNote(doc, currency, id),
  totals: doc.totals.find((t) => t.currency === currency)!,
});

const cases = {
  domestic: invoiceCase('a domestic invoice at 19 % and 7 % (S)', twoRates, 'EUR'),
  eurPart: invoiceCase('the EUR part of a bill in two currencies', twoCurrencies, 'EUR', 'INV-2026-000001-EUR'),
  usdPart: invoiceCase('the USD part of a bill in two currencies', twoCurrencies, 'USD', 'INV-2026-000001-USD'),
  exempt: invoiceCase('a tax-exempt buyer (E)', exemptBuyer, 'EUR'),
  notSubject: invoiceCase('lines without a rate (O)', noRates, 'EUR'),
  long: invoiceCase('a long bill with unlisted lines', longBill, 'EUR'),
  yen: invoiceCase('a currency without minor units (JPY)', yen, 'JPY'),
  noBankAccount: invoiceCase('a seller without a bank account', noBankAccount, 'EUR'),
  credit: creditCase('a partial credit note split over two rates', partialCredit, 'EUR'),
  eurCredit: creditCase('the EUR part of a credit note in two currencies', twoCurrencyCredit, 'EUR', 'CN-2026-000001-EUR'),
  usdCredit: creditCase('the USD part of a credit note in two currencies', twoCurrencyCredit, 'USD', 'CN-2026-000001-USD'),
};
const conforming = Object.values(cases);

/** Documents our model allows that EN 16931 does not: pinned with the rules they break. */
const limits = [
  {
    name: 'a buyer known only by email has no postal address',
    xml: renderUblInvoice({ ...twoRates, buyer: { ...buyer, customer_id: null, name: null, address: null, tax_id: null } }, 'EUR'),
    breaks: ['BR-10'],
  },
  {
    name: 'taxed and untaxed lines on one invoice',
    xml: renderUblInvoice(
      invoiceOf([
        { description: 'Seats', amount: 100_00, currency: 'EUR', tax_rate: VAT_19 },
        { description: 'Reimbursed travel costs', amount: 50_00, currency: 'EUR', tax_rate: null },
      ]),
      'EUR',
    ),
    breaks: ['BR-O-02', 'BR-O-11', 'BR-O-12'],
  },
  {
    name: 'a currency with three decimals (KWD)',
    xml: renderUblInvoice(invoiceOf([{ description: 'Seats', amount: 12_345, currency: 'KWD', tax_rate: VAT_19 }]), 'KWD'),
    breaks: [
      'BR-CO-10',
      'BR-CO-14',
      'BR-CO-15',
      'BR-DEC-09',
      'BR-DEC-12',
      'BR-DEC-14',
      'BR-DEC-18',
      'BR-DEC-19',
      'BR-DEC-20',
      'BR-DEC-23',
      'UBL-DT-01',
    ],
  },
];

const broken = {
  payable: cases.domestic.xml.replace(/(<cbc:PayableAmount currencyID="EUR">)[^<]*/, '$11.00'),
  noIssueDate: cases.domestic.xml.replace(/\s*<cbc:IssueDate>[^<]*<\/cbc:IssueDate>/, ''),
};

const fatal = (v: UblValidation) => v.ruleFailures.filter((f) => f.flag === 'fatal');

/** An amount element's text back in minor units, refusing any digit past the currency's exponent. */
function minorUnits(parent: string | XmlElement, ns: string, name: string, currency: string): number {
  const [el] = xmlElements(parent, ns, name);
  expect(el?.getAttribute('currencyID')).toBe(currency);
  const value = new Decimal(el!.textContent!).times(new Decimal(10).pow(currencyExponent(currency)!));
  expect(value.isInteger()).toBe(true);
  return value.toNumber();
}

/** The totals a document states: net, tax and gross of its monetary total and tax total. */
function statedTotals(xml: string, currency: string): CurrencyTotals {
  const [monetary] = xmlElements(xml, CAC, 'LegalMonetaryTotal');
  const [taxTotal] = xmlElements(xml, CAC, 'TaxTotal');
  const net = minorUnits(monetary, CBC, 'TaxExclusiveAmount', currency);
  expect(minorUnits(monetary, CBC, 'LineExtensionAmount', currency)).toBe(net);
  const gross = minorUnits(monetary, CBC, 'TaxInclusiveAmount', currency);
  expect(minorUnits(monetary, CBC, 'PayableAmount', currency)).toBe(gross);
  return { currency, net, tax: minorUnits(taxTotal, CBC, 'TaxAmount', currency), gross };
}

let results: UblValidation[];
beforeAll(async () => {
  results = await validateUblDocuments([
    ...conforming.map((c) => c.xml),
    ...limits.map((l) => l.xml),
    broken.payable,
    broken.noIssueDate,
    '<?xml version="1.0"?><Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>',
    readFileSync(OFFICIAL_EXAMPLE, 'utf8'),
  ]);
});
const resultOf = (i: number) => results[i];

describe('UBL e-invoices', () => {
  describe.each(conforming.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    it('passes the UBL 2.1 schema and every EN 16931 rule, warnings included', () => {
      expect(resultOf(i).schemaErrors).toEqual([]);
      expect(resultOf(i).ruleFailures).toEqual([]);
    });

    it("states the document's totals of its currency", () => {
      const { xml, totals } = conforming[i];
      expect(statedTotals(xml, totals.currency)).toEqual(totals);
    });
  });

  it('names a part of a bill in several currencies as the caller says, and says where the rest is', () => {
    const usd = cases.usdPart.xml;
    expect(xmlElements(usd, CBC, 'ID')[0].textContent).toBe('INV-2026-000001-USD');
    expect(xmlElements(usd, CBC, 'DocumentCurrencyCode')[0].textContent).toBe('USD');
    expect(xmlElements(usd, CAC, 'InvoiceLine')).toHaveLength(2);
    expect(xmlElements(usd, CBC, 'Note').map((n) => n.textContent)).toContain(
      'The USD amounts of invoice INV-2026-000001; its amounts in EUR are in a separate document each.',
    );
  });

  it('ends the invoice period on the last day billed', () => {
    const period = xmlElements(cases.domestic.xml, CAC, 'InvoicePeriod')[0];
    expect(xmlElements(period, CBC, 'StartDate')[0].textContent).toBe('2026-01-01');
    expect(xmlElements(period, CBC, 'EndDate')[0].textContent).toBe('2026-01-31');
    const closedEarly = renderUblInvoice({ ...twoRates, period: { start: twoRates.period.start, end: '2026-01-20T15:04:05.000Z' } }, 'EUR');
    expect(xmlElements(closedEarly, CBC, 'EndDate')[0].textContent).toBe('2026-01-20');
  });

  it('lists unlisted line items as one line per rate', () => {
    const names = xmlElements(cases.long.xml, CAC, 'Item').map((item) => xmlElements(item, CBC, 'Name')[0].textContent);
    expect(names).toEqual(['Request 1', 'Request 2', 'Book', '1234 further line items (VAT 19 %)', '1 further line item (VAT 7 %)']);
  });

  it('cuts a long item name at a word and keeps the whole text as its description', () => {
    const item = xmlElements(cases.domestic.xml, CAC, 'Item')[2];
    const name = xmlElements(item, CBC, 'Name')[0].textContent!;
    expect(name.length).toBeLessThanOrEqual(100);
    expect(name).toMatch(/Support hours…$/);
    expect(xmlElements(item, CBC, 'Description')[0].textContent).toBe('Support hours '.repeat(12));
  });

  it('leaves the VAT identifiers out of a document not subject to VAT, and identifies the seller by its tax ID', () => {
    const xml = cases.notSubject.xml;
    expect(xmlElements(xml, CAC, 'PartyTaxScheme')).toEqual([]);
    expect(xmlElements(xmlElements(xml, CAC, 'PartyIdentification')[0], CBC, 'ID')[0].textContent).toBe('DE123456788');
  });

  it('pays a euro invoice by SEPA credit transfer and another currency by credit transfer, to the IBAN', () => {
    const code = (xml: string) => xmlElements(xml, CBC, 'PaymentMeansCode')[0].textContent;
    expect(code(cases.eurPart.xml)).toBe('58');
    expect(code(cases.usdPart.xml)).toBe('30');
    const account = xmlElements(cases.eurPart.xml, CAC, 'PayeeFinancialAccount')[0];
    expect(xmlElements(account, CBC, 'ID')[0].textContent).toBe('DE89370400440532013000');
  });

  it('without a bank account leaves the means open and gives the instructions in the payment terms', () => {
    const xml = cases.noBankAccount.xml;
    expect(xmlElements(xml, CBC, 'PaymentMeansCode')[0].textContent).toBe('1');
    expect(xmlElements(xmlElements(xml, CAC, 'PaymentTerms')[0], CBC, 'Note')[0].textContent).toBe(
      'Payable within 30 days, by 2026-03-03. Pay by card on fees.example/pay.',
    );
  });

  it('refers a credit note to the invoice it credits', () => {
    const reference = xmlElements(cases.credit.xml, CAC, 'InvoiceDocumentReference')[0];
    expect(xmlElements(reference, CBC, 'ID')[0].textContent).toBe('INV-2026-000001');
    expect(xmlElements(reference, CBC, 'IssueDate')[0].textContent).toBe('2026-02-01');
  });

  it('refuses a currency the document has no amounts in', () => {
    expect(() => renderUblInvoice(twoRates, 'USD')).toThrow('no amounts in USD');
  });

  describe.each(limits.map((l, i) => [l.name, l.breaks, conforming.length + i] as const))(
    'what EN 16931 cannot take from our model: %s',
    (_name, breaks, i) => {
      it(`passes the schema and breaks exactly ${breaks.join(', ')}`, () => {
        expect(resultOf(i).schemaErrors).toEqual([]);
        expect([...new Set(fatal(resultOf(i)).map((f) => f.id))].sort()).toEqual([...breaks].sort());
      });
    },
  );

  describe('the validation itself', () => {
    const after = conforming.length + limits.length;

    it('catches a payable amount that is not the total (BR-CO-16)', () => {
      expect(fatal(resultOf(after)).map((f) => f.id)).toEqual(['BR-CO-16']);
    });

    it('catches a missing issue date in the schema and in the rules (BR-03)', () => {
      expect(resultOf(after + 1).schemaErrors.join('\n')).toMatch(/IssueDate/);
      expect(fatal(resultOf(after + 1)).map((f) => f.id)).toContain('BR-03');
    });

    it('does not pass a document it has no rules for', () => {
      expect(resultOf(after + 2).schemaErrors).toEqual(['the document element is Order, not a UBL Invoice or CreditNote']);
      expect(fatal(resultOf(after + 2)).map((f) => f.id)).toEqual(['NO-RULE-FIRED']);
    });

    it("passes the standard's own example invoice", () => {
      expect(resultOf(after + 3).schemaErrors).toEqual([]);
      expect(fatal(resultOf(after + 3))).toEqual([]);
    });
  });
});
