/**
 * What the usage endpoints take, declared once (see invoices/requests.ts for the tags the build
 * reads). What a type cannot say (tiers in ascending order, a meter that exists) is a rule in
 * usage/price-rules.ts and usage/events.ts.
 */
import type { MatchesRegexp, Max, MaxLen, Min, MinLen } from 'encore.dev/validate';
import type { Amount, Currency, Id, Text, Timestamp } from '../invoices/requests';

/**
 * Minor units as a decimal string with up to 12 decimal places: "0.0025" is a quarter of a cent.
 * @errorMessage must be a decimal string of minor units with at most 12 decimal places, e.g. "0.0025"
 */
export type UnitAmountDecimal = string & MatchesRegexp<'^[0-9]{1,15}(\\.[0-9]{1,12})?$'>;

/**
 * Whole minor units, 0 or more.
 * @asType integer
 * @errorMessage must be a non-negative integer number of minor units
 */
export type MinorUnits = number & Min<0> & Max<9007199254740991>;

/**
 * A non-negative number of units.
 * @errorMessage must be a non-negative number
 */
export type Units = number & Min<0>;

/**
 * One tier of a graduated or volume price.
 * @additionalProperties false
 */
export interface TierBody {
  /** The last unit of the tier (inclusive), or "inf" for the last tier. */
  up_to: (number & Min<0>) | 'inf';
  unit_amount_decimal?: UnitAmountDecimal | null;
  /** Charged once when usage reaches the tier. */
  flat_amount?: MinorUnits | null;
}

/**
 * A price of a meter's usage on a bill.
 * @additionalProperties false
 */
export interface PriceBody {
  /** A meter's code (POST /meters). */
  meter: Id;
  currency: Currency;
  model: 'per_unit' | 'graduated' | 'volume' | 'package';
  /** per_unit: the price of one unit. */
  unit_amount_decimal?: UnitAmountDecimal | null;
  /**
   * graduated and volume: 1-20 tiers, `up_to` ascending, the last "inf".
   * @errorMessage must be a list of 1 to 20 tiers
   */
  tiers?: (TierBody[] & MinLen<1> & MaxLen<20>) | null;
  /** package: units per package (packages are rounded up). */
  package_size?: (number & Min<1>) | null;
  /** package: the price of one package. */
  package_amount?: MinorUnits | null;
  /** Units deducted before pricing. */
  free_units?: Units | null;
  /** A committed spend for the period: the shortfall is charged as its own line. */
  minimum_amount?: MinorUnits | null;
}

/**
 * An amount of usage (its estimate per currency) that emits `usage.threshold_reached` once reached.
 * @additionalProperties false
 */
export interface UsageAlertBody {
  currency: Currency;
  amount: Amount;
}

/**
 * The body of POST /meters. A meter never changes once created.
 * @additionalProperties false
 */
export interface CreateMeterBody {
  code: Id;
  name: Text & MaxLen<200>;
  aggregation: 'count' | 'sum' | 'max' | 'unique_count' | 'latest';
  /** unique_count: the property of `properties` whose distinct values are counted. */
  field?: (Text & MaxLen<100>) | null;
}

/**
 * A non-negative decimal quantity (a number, or a decimal string for exactness).
 * @errorMessage must be a non-negative decimal
 */
export type Quantity = (number & Min<0>) | (string & MatchesRegexp<'^[0-9]{1,20}(\\.[0-9]{1,12})?$'>);

/**
 * One usage event.
 * @additionalProperties false
 */
export interface UsageEventBody {
  /** Unique per meter: a second event with it is a duplicate. 1-128 characters. */
  event_id: string & MinLen<1> & MaxLen<128>;
  meter: Id;
  /** The bill it counts on; or `series_id`, and the series' bill whose period holds `timestamp`. */
  bill_id?: Id | null;
  series_id?: Id | null;
  timestamp: Timestamp;
  /** Default 1. */
  quantity?: Quantity | null;
  /** Any JSON object (unique_count meters count distinct values of one property). */
  properties?: Record<string, unknown> | null;
}

/**
 * The body of POST /events.
 * @additionalProperties false
 */
export interface IngestEventsBody {
  /**
   * 1-1000 events.
   * @errorMessage must be a list of 1 to 1000 events
   */
  events: UsageEventBody[] & MinLen<1> & MaxLen<1000>;
}
