/**
 * What the customer endpoints take, declared once (see invoices/requests.ts for the tags the build
 * reads). What a type cannot say (a country that exists, a VAT number of that country, tax rates
 * that exist) is a rule in customers/customer-rules.ts.
 */
import type { IsEmail, MatchesRegexp, MaxLen, Min } from 'encore.dev/validate';
import type { Id, Text } from '../invoices/requests';
import type { CountryCode } from '../taxes/requests';

/**
 * A postal address.
 * @additionalProperties false
 */
export interface AddressBody {
  line1: Text & MaxLen<200>;
  line2?: (Text & MaxLen<200>) | null;
  city: Text & MaxLen<100>;
  postal_code: Text & MaxLen<20>;
  country: CountryCode;
  /** State, province or county. */
  region?: (Text & MaxLen<100>) | null;
}

/**
 * A BCP 47 language tag, e.g. en, de-DE.
 * @errorMessage must be a BCP 47 language tag such as en or de-DE
 */
export type Locale = string & MatchesRegexp<'^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$'>;

/**
 * Tax rate codes; one per line today (EN 16931 gives a line one VAT category).
 * @errorMessage must be a list of at most one tax rate code
 */
export type TaxRateCodes = Id[] & MaxLen<1>;

/**
 * The body of POST /customers.
 * @additionalProperties false
 */
export interface CreateCustomerBody {
  /** 1-64 of [A-Za-z0-9_.:-]; generated when absent. */
  customer_id?: Id | null;
  /** Legal name, printed on invoices. */
  name: Text & MaxLen<200>;
  /** Where invoices and credit notes are emailed. */
  email: string & MaxLen<254> & IsEmail;
  address: AddressBody;
  /** VAT number; checked against the address's country where its pattern is known. */
  tax_id?: (Text & MaxLen<50>) | null;
  /** Invoiced without tax, with the exemption note. */
  tax_exempt?: boolean | null;
  locale?: Locale | null;
  /** Default tax rates of the customer's bills' line items. */
  tax_rates?: TaxRateCodes | null;
}

/**
 * The body of PATCH /customers/:customerId: the fields to change (null clears an optional one).
 * Issued invoices keep the customer as it was when they were finalized.
 * @additionalProperties false
 */
export interface UpdateCustomerBody {
  name?: Text & MaxLen<200>;
  email?: string & MaxLen<254> & IsEmail;
  address?: AddressBody;
  tax_id?: (Text & MaxLen<50>) | null;
  tax_exempt?: boolean;
  locale?: Locale | null;
  tax_rates?: TaxRateCodes | null;
}

/** The query of GET /customers. */
export interface ListCustomersQuery {
  /**
   * 1-100, default 20.
   * @asType integer
   */
  limit?: number & Min<1>;
  cursor?: string;
}
