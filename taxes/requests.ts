/**
 * What the tax rate endpoints take, declared once (see invoices/requests.ts for the tags the build
 * reads). What a type cannot say (a country that exists) is a rule in taxes/tax-rates.ts.
 */
import type { MatchesRegexp, MaxLen } from 'encore.dev/validate';
import type { Id, Text } from '../invoices/requests';

/**
 * A percentage from 0 to 100 as a decimal string, at most 6 decimal places: "19", "7.5", "0".
 * @errorMessage must be a decimal string from 0 to 100 with at most 6 decimal places, e.g. "19" or "7.5"
 */
export type Percentage = string & MatchesRegexp<'^(100(\\.0{1,6})?|[0-9]{1,2}(\\.[0-9]{1,6})?)$'>;

/**
 * An ISO 3166-1 alpha-2 country code in capitals, e.g. DE.
 * @errorMessage must be an ISO 3166-1 alpha-2 country code in capitals, e.g. DE
 */
export type CountryCode = string & MatchesRegexp<'^[A-Z]{2}$'>;

/**
 * The body of POST /tax-rates. A rate never changes once created: a different rate is a new code.
 * @additionalProperties false
 */
export interface CreateTaxRateBody {
  /** The rate's id, 1-64 of [A-Za-z0-9_.:-], e.g. DE-VAT-19. */
  code: Id;
  /** Printed on invoices, e.g. "VAT 19 %" (at most 100 characters). */
  name: Text & MaxLen<100>;
  percentage: Percentage;
  /** Tax-inclusive amounts are not supported: false or absent. */
  inclusive?: boolean | null;
  /** Where the rate applies (informative). */
  country?: CountryCode | null;
  description?: (Text & MaxLen<500>) | null;
}
