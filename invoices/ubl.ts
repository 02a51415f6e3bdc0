/**
 * The e-invoice beside the PDF: an EN 16931 invoice or credit note in UBL 2.1 syntax, rendered from
 * the same frozen document, so the two cannot disagree. A UBL document has one currency and a bill
 * may hold several: each call renders the part of the document in one currency (its lines, its VAT
 * breakdown, its totals); the caller names each part (`id`). Pure: no I/O.
 *
 * The choices below name the EN 16931 business rule they satisfy (BR-…, as the CEN schematron
 * numbers them); tests/unit/ubl.test.ts runs that schematron and the UBL schema over the output.
 * Only the core standard is claimed: no CIUS (Peppol BIS, XRechnung) and its extra rules.
 */
import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces';
import { AppError } from '../core/errors';
import { currencyExponent, formatMinorUnits } from '../core/money';
import { utcDate } from './invoice-pdf';
import type {
  AppliedTaxRate,
  CreditNoteDocument,
  CurrencyTotals,
  InvoiceDocument,
  InvoiceParties,
  PostalAddress,
  Seller,
} from './document';

const NS = {
  Invoice: 'urn:oasis:names:specification:ubl:schema:xsd:Invoice-2',
  CreditNote: 'urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2',
  cac: 'urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2',
  cbc: 'urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2',
};

/** BT-24: the EN 16931 core, no CIUS or extension. */
const CUSTOMIZATION_ID = 'urn:cen.eu:en16931:2017';

/** A name longer than this is cut (at a word) and the whole text goes in the item description. */
const ITEM_NAME_MAX = 100;

/** A VAT category as UBL writes it: S with its rate, Z and E at 0 %, O without a rate (BR-O-05, BR-48). */
interface VatCategory {
  id: AppliedTaxRate['category'] | 'O';
  percent: string | null;
}

/** One category of the VAT breakdown (BG-23). */
interface Breakdown {
  category: VatCategory;
  net: number;
  tax: number;
  exemptionReasons: string[];
}

interface Line {
  id: string;
  text: string;
  amount: number;
  category: VatCategory;
}

/** What one currency of a document holds: its totals and its amounts per rate (null: not subject to VAT). */
interface Part {
  currency: string;
  totals: CurrencyTotals;
  portions: { rate: AppliedTaxRate | null; net: number; tax: number }[];
  breakdown: Breakdown[];
}

/** An invoice's part in `currency` as an EN 16931 UBL Invoice; `id` names it (default: the invoice number). */
export function renderUblInvoice(doc: InvoiceDocument, currency: string, id = doc.invoice_number): string {
  const part = partOf(doc, currency);
  const root = newDocument('Invoice');
  root.ele('cbc:CustomizationID').txt(CUSTOMIZATION_ID);
  root.ele('cbc:ID').txt(id);
  root.ele('cbc:IssueDate').txt(utcDate(doc.issued_at));
  root.ele('cbc:DueDate').txt(utcDate(doc.due_at));
  root.ele('cbc:InvoiceTypeCode').txt('380');
  notes(root, [doc.description, otherCurrenciesNote(doc, currency, 'invoice', doc.invoice_number)]);
  root.ele('cbc:DocumentCurrencyCode').txt(currency);
  invoicePeriod(root, doc.period);
  parties(root, doc, part);
  paymentMeans(root, doc.seller, currency, id);
  root.ele('cac:PaymentTerms').ele('cbc:Note').txt(paymentTermsNote(doc));
  taxTotal(root, part);
  monetaryTotal(root, part);
  for (const line of invoiceLines(doc, currency)) writeLine(root, 'Invoice', line, currency);
  return root.end({ prettyPrint: true });
}

/**
 * A credit note's part in `currency` as an EN 16931 UBL CreditNote; `id` names it (default: the
 * credit note number), `invoiceId` is the ID of the e-invoice it credits (default: the invoice number).
 */
export function renderUblCreditNote(
  doc: CreditNoteDocument,
  currency: string,
  id = doc.credit_note_number,
  invoiceId = doc.invoice_number,
): string {
  const part = partOf(doc, currency);
  const root = newDocument('CreditNote');
  root.ele('cbc:CustomizationID').txt(CUSTOMIZATION_ID);
  root.ele('cbc:ID').txt(id);
  root.ele('cbc:IssueDate').txt(utcDate(doc.issued_at));
  root.ele('cbc:CreditNoteTypeCode').txt('381');
  notes(root, [doc.reason, otherCurrenciesNote(doc, currency, 'credit note', doc.credit_note_number)]);
  root.ele('cbc:DocumentCurrencyCode').txt(currency);
  // BG-3: the invoice it corrects (BR-55), with that invoice's issue date.
  const reference = root.ele('cac:BillingReference').ele('cac:InvoiceDocumentReference');
  reference.ele('cbc:ID').txt(invoiceId);
  reference.ele('cbc:IssueDate').txt(utcDate(doc.invoice_issued_at));
  parties(root, doc, part);
  // No payment means or terms: those say how the buyer pays, and a credit is the seller's to settle.
  taxTotal(root, part);
  monetaryTotal(root, part);
  for (const line of creditLines(doc, part, invoiceId)) writeLine(root, 'CreditNote', line, currency);
  return root.end({ prettyPrint: true });
}

function newDocument(kind: 'Invoice' | 'CreditNote'): XMLBuilder {
  // Text from customers may hold characters XML 1.0 cannot carry (control characters): shown as U+FFFD.
  return create({ version: '1.0', encoding: 'UTF-8', invalidCharReplacement: '\uFFFD' }).ele(NS[kind], kind, {
    'xmlns:cac': NS.cac,
    'xmlns:cbc': NS.cbc,
  });
}

function partOf(doc: InvoiceParties, currency: string): Part {
  const totals = doc.totals.find((t) => t.currency === currency);
  if (currencyExponent(currency) === undefined || !totals) {
    throw new AppError('invalid_argument', `the document has no amounts in ${currency}`, { currency });
  }
  const taxes = doc.taxes.filter((t) => t.currency === currency);
  // The net no rate applies to: the lines not subject to VAT (category O).
  const untaxed = totals.net - taxes.reduce((n, t) => n + t.net, 0);
  const portions = [...taxes, { rate: null, net: untaxed, tax: 0 }].filter((p) => p.net !== 0 || p.tax !== 0);
  return { currency, totals, portions, breakdown: breakdownOf(portions) };
}

function vatCategory(rate: AppliedTaxRate | null): VatCategory {
  if (!rate) return { id: 'O', percent: null };
  // The percentage as written ("19", "7.5"); Z and E are 0 % (BR-Z-05, BR-E-05).
  return { id: rate.category, percent: rate.category === 'S' ? rate.percentage : '0' };
}

/**
 * One breakdown per category, and for S per rate: rates that share a category and percentage
 * (two codes at 19 %) are one group, because BR-S-08 sums all lines of a percentage into each of
 * its groups and BR-E-01/BR-Z-01/BR-O-01 allow exactly one E, Z and O group.
 */
function breakdownOf(portions: Part['portions']): Breakdown[] {
  const groups = new Map<string, Breakdown>();
  for (const { rate, net, tax } of portions) {
    const category = vatCategory(rate);
    const key = `${category.id} ${category.percent}`;
    const group = groups.get(key) ?? { category, net: 0, tax: 0, exemptionReasons: [] };
    // BR-E-10: an exempt group says why; the model's reason, or the category's own words.
    const reason = rate?.category === 'E' ? (rate.exemption_reason ?? 'Exempt from VAT') : null;
    const reasons = reason && !group.exemptionReasons.includes(reason) ? [...group.exemptionReasons, reason] : group.exemptionReasons;
    groups.set(key, { category, net: group.net + net, tax: group.tax + tax, exemptionReasons: reasons });
  }
  return [...groups.values()];
}

/** Minor units as the decimal text UBL carries, with the currency's exponent (1234 EUR → "12.34"): no float in between. */
const amountText = (minor: number, currency: string) => formatMinorUnits(minor, currency).split(' ')[0];

function amount(parent: XMLBuilder, name: string, minor: number, currency: string): void {
  parent.ele(name, { currencyID: currency }).txt(amountText(minor, currency));
}

/** The UTC date of an ISO timestamp, YYYY-MM-DD. */

function notes(root: XMLBuilder, texts: (string | null)[]): void {
  for (const text of texts) if (text?.trim()) root.ele('cbc:Note').txt(text.trim());
}

/** Says that a document with several currencies is split, so no reader takes one part for the whole. */
function otherCurrenciesNote(doc: InvoiceParties, currency: string, kind: string, number: string): string | null {
  const others = doc.totals.map((t) => t.currency).filter((c) => c !== currency);
  if (others.length === 0) return null;
  return `The ${currency} amounts of ${kind} ${number}; its amounts in ${others.join(', ')} are in a separate document each.`;
}

/**
 * BG-14. The period's end is exclusive, EN 16931's end date (BT-74) the last day billed: a period
 * that ends at midnight UTC ends on the day before (billed to 1 March 00:00: ends 28 February), one
 * that ends during a day (a bill closed early) on that day. Never before its start (BR-29).
 */
function invoicePeriod(root: XMLBuilder, period: { start: string; end: string }): void {
  const start = utcDate(period.start);
  const end = new Date(period.end);
  const atMidnight = end.toISOString().endsWith('T00:00:00.000Z');
  const last = utcDate(new Date(end.getTime() - (atMidnight ? 86_400_000 : 0)).toISOString());
  const el = root.ele('cac:InvoicePeriod');
  el.ele('cbc:StartDate').txt(start);
  el.ele('cbc:EndDate').txt(last < start ? start : last);
}

/** A VAT identifier starts with its country's prefix (BR-CO-09); a tax number without one is not one. */
const vatIdentifier = (taxId: string | null) => (taxId && /^[A-Z]{2}/.test(taxId) ? taxId : null);

function parties(root: XMLBuilder, doc: InvoiceParties, part: Part): void {
  // A document with only lines not subject to VAT shall not carry VAT identifiers (BR-O-02).
  const notSubjectToVat = part.breakdown.every((b) => b.category.id === 'O');
  supplier(root.ele('cac:AccountingSupplierParty').ele('cac:Party'), doc.seller, notSubjectToVat);
  customer(root.ele('cac:AccountingCustomerParty').ele('cac:Party'), doc.buyer, notSubjectToVat);
}

function supplier(party: XMLBuilder, seller: Seller, notSubjectToVat: boolean): void {
  const vatId = notSubjectToVat ? null : vatIdentifier(seller.tax_id);
  // BT-34 with scheme EM (an email address, BR-62): the address the buyer answers to.
  party.ele('cbc:EndpointID', { schemeID: 'EM' }).txt(seller.email);
  // A tax number that cannot be the VAT identifier (BT-31) still identifies the seller, as the
  // seller identifier (BT-29): BR-CO-26 wants one of BT-29, BT-30, BT-31, and the model has no other.
  if (seller.tax_id && !vatId) party.ele('cac:PartyIdentification').ele('cbc:ID').txt(seller.tax_id);
  party.ele('cac:PartyName').ele('cbc:Name').txt(seller.name);
  postalAddress(party, seller.address);
  if (vatId) partyVatId(party, vatId);
  party.ele('cac:PartyLegalEntity').ele('cbc:RegistrationName').txt(seller.name);
  party.ele('cac:Contact').ele('cbc:ElectronicMail').txt(seller.email);
}

function customer(party: XMLBuilder, buyer: InvoiceParties['buyer'], notSubjectToVat: boolean): void {
  const vatId = notSubjectToVat ? null : vatIdentifier(buyer.tax_id);
  if (buyer.email) party.ele('cbc:EndpointID', { schemeID: 'EM' }).txt(buyer.email);
  // BT-46: our customer number, as the buyer's account with the seller.
  if (buyer.customer_id) party.ele('cac:PartyIdentification').ele('cbc:ID').txt(buyer.customer_id);
  // BR-10 and BR-11 want the buyer's address with its country. A bill without a customer knows only
  // an email: the address is left out (BR-10 fails) rather than made up.
  if (buyer.address) postalAddress(party, buyer.address);
  if (vatId) partyVatId(party, vatId);
  // BR-07: the buyer has a name; a bill without a customer knows only its email.
  party
    .ele('cac:PartyLegalEntity')
    .ele('cbc:RegistrationName')
    .txt(buyer.name ?? buyer.email ?? 'Customer');
  if (buyer.email) party.ele('cac:Contact').ele('cbc:ElectronicMail').txt(buyer.email);
}

function postalAddress(party: XMLBuilder, address: PostalAddress): void {
  const el = party.ele('cac:PostalAddress');
  const optional = (name: string, value: string | null) => value?.trim() && el.ele(name).txt(value.trim());
  optional('cbc:StreetName', address.line1);
  optional('cbc:AdditionalStreetName', address.line2);
  optional('cbc:CityName', address.city);
  optional('cbc:PostalZone', address.postal_code);
  optional('cbc:CountrySubentity', address.region);
  el.ele('cac:Country').ele('cbc:IdentificationCode').txt(address.country);
}

function partyVatId(party: XMLBuilder, vatId: string): void {
  const scheme = party.ele('cac:PartyTaxScheme');
  scheme.ele('cbc:CompanyID').txt(vatId);
  scheme.ele('cac:TaxScheme').ele('cbc:ID').txt('VAT');
}

/**
 * BG-16. With an IBAN: a credit transfer to it (BR-61 wants the account), SEPA (58) for euros only,
 * as SEPA is a euro scheme, else 30; the invoice's ID as the remittance information (BT-83).
 * Without one: 1, "instrument not defined"; the instructions text goes in the payment terms, as
 * EN 16931 has no element for it (UBL's InstructionNote is outside the standard: UBL-CR-681).
 */
function paymentMeans(root: XMLBuilder, seller: Seller, currency: string, id: string): void {
  const means = root.ele('cac:PaymentMeans');
  const { iban, bic } = seller.payment;
  if (!iban) {
    means.ele('cbc:PaymentMeansCode').txt('1');
    return;
  }
  const sepa = currency === 'EUR';
  means.ele('cbc:PaymentMeansCode', { name: sepa ? 'SEPA credit transfer' : 'Credit transfer' }).txt(sepa ? '58' : '30');
  means.ele('cbc:PaymentID').txt(id);
  const account = means.ele('cac:PayeeFinancialAccount');
  account.ele('cbc:ID').txt(iban);
  if (bic) account.ele('cac:FinancialInstitutionBranch').ele('cbc:ID').txt(bic);
}

/** BT-20, one note (UBL-SR-05): when it is due, and the seller's payment instructions. */
function paymentTermsNote(doc: InvoiceDocument): string {
  const days = /^P(\d+)D$/.exec(doc.payment_terms)?.[1];
  const within = days ? `within ${days} days` : `within ${doc.payment_terms} (ISO 8601)`;
  const text = doc.seller.payment.text?.trim();
  return `Payable ${within}, by ${utcDate(doc.due_at)}.${text ? ` ${text}` : ''}`;
}

/** BG-23 and BT-110: Σ of the groups' tax is the total tax (BR-CO-14). */
function taxTotal(root: XMLBuilder, { currency, totals, breakdown }: Part): void {
  const total = root.ele('cac:TaxTotal');
  amount(total, 'cbc:TaxAmount', totals.tax, currency);
  for (const group of breakdown) {
    const subtotal = total.ele('cac:TaxSubtotal');
    amount(subtotal, 'cbc:TaxableAmount', group.net, currency);
    amount(subtotal, 'cbc:TaxAmount', group.tax, currency);
    const category = subtotal.ele('cac:TaxCategory');
    category.ele('cbc:ID').txt(group.category.id);
    if (group.category.percent !== null) category.ele('cbc:Percent').txt(group.category.percent);
    if (group.category.id === 'O') {
      // BR-O-10: the reason, coded from the CEF VATEX list and in words.
      category.ele('cbc:TaxExemptionReasonCode').txt('VATEX-EU-O');
      category.ele('cbc:TaxExemptionReason').txt('Not subject to VAT');
    }
    // One reason text at most (UBL-SR-32): the reasons of merged exempt rates, joined.
    if (group.exemptionReasons.length > 0) category.ele('cbc:TaxExemptionReason').txt(group.exemptionReasons.join('; '));
    category.ele('cac:TaxScheme').ele('cbc:ID').txt('VAT');
  }
}

/** BG-22: no allowances, charges or prepayments, so the net is every line's sum and the gross is due. */
function monetaryTotal(root: XMLBuilder, { currency, totals }: Part): void {
  const total = root.ele('cac:LegalMonetaryTotal');
  amount(total, 'cbc:LineExtensionAmount', totals.net, currency);
  amount(total, 'cbc:TaxExclusiveAmount', totals.net, currency);
  amount(total, 'cbc:TaxInclusiveAmount', totals.gross, currency);
  amount(total, 'cbc:PayableAmount', totals.gross, currency);
}

/** The listed lines of the currency by position, then one line per group of unlisted ones. */
function invoiceLines(doc: InvoiceDocument, currency: string): Line[] {
  const listed = doc.lines
    .filter((l) => l.currency === currency)
    .map((l) => ({ id: String(l.position), text: l.description, amount: l.amount, category: vatCategory(l.tax_rate) }));
  // Numbered across the whole document, so a group keeps its ID in every currency's part.
  const unlisted = doc.unlisted
    .map((u, i) => ({ u, id: `unlisted-${i + 1}` }))
    .filter(({ u }) => u.currency === currency)
    .map(({ u, id }) => ({
      id,
      text: `${u.count} further line item${u.count === 1 ? '' : 's'}${u.tax_rate ? ` (${u.tax_rate.name})` : ''}`,
      amount: u.amount,
      category: vatCategory(u.tax_rate),
    }));
  return [...listed, ...unlisted];
}

/**
 * A credit's lines are gross amounts with a reason; UBL lines are net and in one VAT category. So a
 * credit note has one line per rate its credit was split over (the net of that rate), and one for
 * the part not subject to VAT: the lines then sum to the breakdown exactly (BR-S-08, BR-CO-10).
 */
function creditLines(doc: CreditNoteDocument, part: Part, invoiceId: string): Line[] {
  const reasons = [...new Set(doc.lines.filter((l) => l.currency === part.currency).map((l) => l.reason.trim()))].filter(Boolean);
  const text = reasons.length > 0 ? reasons.join('; ') : `Credit of invoice ${invoiceId}`;
  return part.portions.map((p, i) => ({ id: String(i + 1), text, amount: p.net, category: vatCategory(p.rate) }));
}

function writeLine(root: XMLBuilder, kind: 'Invoice' | 'CreditNote', line: Line, currency: string): void {
  const el = root.ele(kind === 'Invoice' ? 'cac:InvoiceLine' : 'cac:CreditNoteLine');
  el.ele('cbc:ID').txt(line.id);
  // One unit (UN/ECE rec. 20 C62) at the line's amount: a line item is a charge, not a quantity.
  el.ele(kind === 'Invoice' ? 'cbc:InvoicedQuantity' : 'cbc:CreditedQuantity', { unitCode: 'C62' }).txt('1');
  amount(el, 'cbc:LineExtensionAmount', line.amount, currency);
  const item = el.ele('cac:Item');
  const name = itemName(line.text);
  // BT-154 keeps the whole text when the name (BT-153) had to be cut.
  if (name !== line.text.trim()) item.ele('cbc:Description').txt(line.text);
  item.ele('cbc:Name').txt(name);
  const category = item.ele('cac:ClassifiedTaxCategory');
  category.ele('cbc:ID').txt(line.category.id);
  if (line.category.percent !== null) category.ele('cbc:Percent').txt(line.category.percent);
  category.ele('cac:TaxScheme').ele('cbc:ID').txt('VAT');
  amount(el.ele('cac:Price'), 'cbc:PriceAmount', line.amount, currency);
}

/** The item name (BR-25: never empty): whitespace collapsed, cut at a word past ITEM_NAME_MAX characters. */
function itemName(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const chars = Array.from(flat); // code points: a cut never splits a surrogate pair
  if (chars.length === 0) return 'Line item';
  if (chars.length <= ITEM_NAME_MAX) return flat;
  const cut = chars.slice(0, ITEM_NAME_MAX - 1).join('');
  const space = cut.lastIndexOf(' ');
  return `${space > ITEM_NAME_MAX / 2 ? cut.slice(0, space) : cut}…`;
}
