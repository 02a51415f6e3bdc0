/**
 * An issued document as it was frozen at its issue: the parties, the tax rates and the amounts. The
 * PDF and the e-invoice (UBL) are both rendered from it, so they cannot disagree, and a later change
 * of a customer or of the seller's configuration never changes a document already issued.
 * Plain data: stored as JSON with the invoice, no framework types.
 */

/** A postal address; `country` is ISO 3166-1 alpha-2. */
export interface PostalAddress {
  line1: string;
  line2: string | null;
  city: string;
  postal_code: string;
  country: string;
  region: string | null;
}

/** How the customer pays: a free text, a bank account, or both. */
export interface PaymentInstructions {
  text: string | null;
  bank_name: string | null;
  iban: string | null;
  bic: string | null;
}

/** The issuer, from configuration (SELLER_*). */
export interface Seller {
  name: string;
  address: PostalAddress;
  /** VAT number (or other tax registration) as printed, e.g. DE136695976. */
  tax_id: string | null;
  email: string;
  payment: PaymentInstructions;
}

/** The customer as it was when the invoice was finalized (or only an email, for a bill without a customer). */
export interface Buyer {
  customer_id: string | null;
  name: string | null;
  email: string | null;
  address: PostalAddress | null;
  tax_id: string | null;
  tax_exempt: boolean;
}

/**
 * A tax rate as applied on a document. `category` is the EN 16931 VAT category: `S` standard (a
 * percentage above 0), `Z` zero rated (0 %), `E` exempt (a tax-exempt customer; `exemption_reason`
 * says why).
 */
export interface AppliedTaxRate {
  code: string;
  name: string;
  /** A decimal string, 0-100, e.g. "19" or "7.5". */
  percentage: string;
  category: 'S' | 'Z' | 'E';
  exemption_reason: string | null;
}

/** One rate in one currency: the net it applies to and the tax, rounded once, half up. */
export interface TaxSubtotal {
  currency: string;
  rate: AppliedTaxRate;
  net: number;
  tax: number;
}

/** One currency of a document, in minor units: gross = net + tax. */
export interface CurrencyTotals {
  currency: string;
  net: number;
  tax: number;
  gross: number;
}

/** A line item on the invoice; `amount` is net, in minor units of `currency`. */
export interface DocumentLine {
  position: number;
  created_at: string;
  description: string;
  amount: number;
  currency: string;
  /** Null: not subject to tax (no rate on the line, the bill or the customer). */
  tax_rate: AppliedTaxRate | null;
}

/** Line items a long bill does not list one by one, summed per currency and rate. */
export interface UnlistedLines {
  currency: string;
  tax_rate: AppliedTaxRate | null;
  count: number;
  amount: number;
}

/** What an invoice froze when it was finalized (stored as `invoices.document`). */
export interface InvoiceParties {
  seller: Seller;
  buyer: Buyer;
  /** Per currency and rate, ordered by currency then code. */
  taxes: TaxSubtotal[];
  /** Per currency, ordered by currency. */
  totals: CurrencyTotals[];
}

export interface InvoiceDocument extends InvoiceParties {
  invoice_number: string;
  issued_at: string;
  due_at: string;
  /** ISO 8601 duration from issue to due date, e.g. P30D. */
  payment_terms: string;
  bill_id: string;
  description: string | null;
  /** The billing period shown: [start, end). */
  period: { start: string; end: string };
  /** The first line items, in order (the whole bill when `unlisted` is empty). */
  lines: DocumentLine[];
  unlisted: UnlistedLines[];
}

/** One credited amount, gross, in minor units of `currency`. */
export interface CreditedLine {
  currency: string;
  amount: number;
  reason: string;
}

export interface CreditNoteDocument extends InvoiceParties {
  credit_note_number: string;
  invoice_number: string;
  invoice_issued_at: string;
  kind: 'partial' | 'full' | 'void';
  reason: string | null;
  issued_at: string;
  bill_id: string;
  /** What it credits, gross; `taxes` and `totals` split it as its invoice was split. */
  lines: CreditedLine[];
}
