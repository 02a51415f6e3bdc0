/**
 * What the invoice endpoints take, declared once, as Encore declares request shapes: Encore checks
 * them when it serves the API, and the build (scripts/build-api.ts) turns them into the JSON
 * Schemas the standalone host checks with and the OpenAPI document shows. The field types the bill
 * endpoints share (ids, money, text) live here too: bills sit above invoices. What a type cannot
 * say (a currency that exists, a payment not in the future) is a domain rule, run by the use case.
 *
 * Two JSDoc tags are read by the build and ignored by Encore: `@asType integer` (Encore has numbers
 * only) and `@errorMessage` (the `reason` of the 400; `{ keyword: reason }` for one keyword).
 * `@additionalProperties false` refuses fields a body does not declare: money requests do, so
 * that a misspelt field is not dropped silently (Encore itself ignores unknown fields).
 */
import type { Max, MatchesRegexp, MaxLen, Min, MinLen } from 'encore.dev/validate';

/**
 * What every id of this API is made of: 1-64 characters of A-Z, a-z, 0-9, `_ . : -`.
 * @errorMessage must be 1-64 characters of A-Z, a-z, 0-9, _ . : -
 */
export type IdPattern = MatchesRegexp<'^[A-Za-z0-9_.:-]{1,64}$'>;

/** An id: 1-64 characters of A-Z, a-z, 0-9, `_ . : -`. */
// A path parameter is declared `string & IdPattern` instead: Encore's parser takes a string, number or
// boolean there, validated or not, and does not look through a named alias (encoding.rs `rewrite_path_types`).
export type Id = string & IdPattern;

/**
 * Integer minor units of a currency (cents for USD, yen for JPY), from 1 to 2^53 − 1.
 * @asType integer
 * @errorMessage must be a positive integer number of minor units within the safe integer range
 */
export type Amount = number & Min<1> & Max<9007199254740991>;

/**
 * An ISO 4217 code, e.g. USD, GEL, JPY, KWD.
 * @errorMessage must be an ISO 4217 code of three capital letters
 */
export type Currency = string & MatchesRegexp<'^[A-Z]{3}$'>;

/**
 * An RFC 3339 timestamp with a time zone, e.g. 2030-01-31T00:00:00Z.
 * @errorMessage must be an RFC 3339 timestamp with a time zone, e.g. 2030-01-31T00:00:00Z
 */
// [0-9], not \d: Encore's regex engine (Rust's) takes \d for any Unicode digit.
export type Timestamp = string &
  MatchesRegexp<'^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$'>;

/**
 * Text with something in it besides white space.
 * @errorMessage { "pattern": "must not be blank" }
 */
export type Text = string & MatchesRegexp<'\\S'>;

/**
 * The body of POST /bills/:billId/invoice/payments.
 * @additionalProperties false
 */
export interface RecordPaymentBody {
  /** Minor units, at most what is due in `currency`: overpayment is refused. */
  amount: Amount;
  currency: Currency;
  /** RFC 3339, not in the future; now when absent. */
  paid_at?: Timestamp | null;
  /** The payment's reference in the payer's or the bank's records (at most 200 characters). */
  reference?: (Text & MaxLen<200>) | null;
}

/**
 * One line of a credit note.
 * @additionalProperties false
 */
export interface CreditNoteLineBody {
  amount: Amount;
  currency: Currency;
  /**
   * Shown on the credit note, 1-500 characters.
   * @errorMessage is required: 1 to 500 characters
   */
  reason: Text & MaxLen<500>;
}

/**
 * The body of POST /bills/:billId/credit-notes: `lines`, or `full: true` for everything still due.
 * @additionalProperties false
 */
export interface IssueCreditNoteBody {
  /**
   * 1-100 lines.
   * @errorMessage must be a list of 1 to 100 lines
   */
  lines?: (CreditNoteLineBody[] & MinLen<1> & MaxLen<100>) | null;
  full?: boolean | null;
  /** Shown on the credit note (at most 500 characters). */
  reason?: (Text & MaxLen<500>) | null;
}

/**
 * The body of POST /bills/:billId/invoice/void.
 * @additionalProperties false
 */
export interface InvoiceActionBody {
  reason?: (Text & MaxLen<500>) | null;
}
