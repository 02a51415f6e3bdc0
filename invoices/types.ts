/**
 * Where a closed bill's invoice is. Open bills have none yet. `no_invoice`: the bill closed with
 * nothing on it, so no invoice was issued (no number, no email, nothing due).
 */
export type InvoiceStatus = 'pending' | 'generated' | 'sent' | 'skipped' | 'failed' | 'no_invoice';
export const INVOICE_STATUSES: readonly InvoiceStatus[] = ['pending', 'generated', 'sent', 'skipped', 'failed', 'no_invoice'];

/** The invoice as a bill shows it. */
export interface InvoiceSummary {
  status: InvoiceStatus;
  invoice_number: string | null;
  sent_at: string | null;
  /** Why it failed (status `failed`), or why the last delivery attempt failed while it retries. */
  error: string | null;
  /** Where its money is, once it is finalized (numbered); null before. */
  payment_status: PaymentStatus | null;
  due_at: string | null;
  /** Per currency: invoiced, credited, paid and still due (empty before finalization). */
  amounts: InvoiceAmounts[];
}

/** The step of the post-process that failed. */
export type PostProcessStep = 'generate' | 'deliver';

export interface RetryInvoiceResponse {
  invoice: InvoiceSummary;
  /** True when this call took a failed invoice up again; false when there was nothing to restart. */
  restarted: boolean;
}

/**
 * Where the money of a finalized invoice is. `open` → `partially_paid` (some paid) | `paid` (nothing
 * due: paid, or credited in full) | `overdue` (past `due_at` with something due) | `uncollectible`
 * (written off by the issuer; still payable) | `void` (cancelled: fully credited, never paid).
 */
export type PaymentStatus = 'open' | 'partially_paid' | 'paid' | 'overdue' | 'uncollectible' | 'void';
export const PAYMENT_STATUSES: readonly PaymentStatus[] = ['open', 'partially_paid', 'paid', 'overdue', 'uncollectible', 'void'];

/**
 * One currency of an invoice, in minor units: `total` is gross (`net` + `tax`), and `due` =
 * `total` − `credited` − `paid`, never negative.
 */
export interface InvoiceAmounts {
  currency: string;
  net: number;
  tax: number;
  total: number;
  credited: number;
  paid: number;
  due: number;
}

/** A finalized invoice's account: what it billed, what was credited and paid, and what is still due. */
export interface InvoiceAccount {
  bill_id: string;
  invoice_number: string;
  status: PaymentStatus;
  /** ISO 8601 duration from finalization to `due_at` (the bill's `payment_terms`). */
  payment_terms: string;
  finalized_at: string;
  due_at: string;
  paid_at: string | null;
  overdue_at: string | null;
  uncollectible_at: string | null;
  voided_at: string | null;
  amounts: InvoiceAmounts[];
  /** The tax per rate and currency, as frozen at finalization (empty: no tax). */
  taxes: TaxLine[];
  /** Grows with every change: of two answers about one invoice, the higher is the newer. */
  version: number;
}

/** Tax at one rate in one currency, in minor units: `tax` of `net`, rounded once, half up. */
export interface TaxLine {
  currency: string;
  code: string;
  name: string;
  /** A decimal string, e.g. "19" or "7.5". */
  percentage: string;
  /** EN 16931 VAT category: S standard, Z zero rated, E exempt. */
  category: 'S' | 'Z' | 'E';
  exemption_reason: string | null;
  net: number;
  tax: number;
}

/** A payment recorded against an invoice. */
export interface Payment {
  payment_id: string;
  bill_id: string;
  currency: string;
  amount: number;
  /** When the customer paid (as reported), UTC. */
  paid_at: string;
  reference: string | null;
  recorded_at: string;
}

export interface CreditNoteLine {
  currency: string;
  amount: number;
  reason: string;
}

/** An immutable credit note: it lowers what is due on its invoice, which itself never changes. */
export interface CreditNote {
  credit_note_id: string;
  /** `CN-<year>-<6 digits>`, from its own gap-free series. */
  credit_note_number: string;
  bill_id: string;
  invoice_number: string;
  /** `partial`: the lines asked for; `full`: everything still due; `void`: issued by a void. */
  kind: 'partial' | 'full' | 'void';
  reason: string | null;
  issued_at: string;
  /** What it credits, gross. */
  lines: CreditNoteLine[];
  /** The credited amounts split into net and tax per rate, as its invoice was split. */
  taxes: TaxLine[];
  /** Whether its email to the customer went out (`skipped`: the bill has no customer_email). */
  email_status: 'pending' | 'sent' | 'skipped';
  sent_at: string | null;
}

export interface PaymentRecorded {
  payment: Payment;
  invoice: InvoiceAccount;
}

export interface CreditNoteIssued {
  credit_note: CreditNote;
  invoice: InvoiceAccount;
}

export interface InvoiceVoided {
  invoice: InvoiceAccount;
  /** The full credit note the void issued (null when nothing was left to credit). */
  credit_note: CreditNote | null;
}

/** GET /bills/:billId/invoice/account: the account with its payments and credit notes, oldest first. */
export interface InvoiceAccountDetails {
  invoice: InvoiceAccount;
  payments: Payment[];
  credit_notes: CreditNote[];
}
