/**
 * Rating: what an aggregate of usage costs under a price. Exact decimal arithmetic throughout
 * (decimal.js); each line is rounded once, at its end, to the currency's minor unit, half up.
 * Prices are in minor units, `unit_amount_decimal` with up to 12 decimal places ("0.0025" is a
 * quarter of a cent). Pure: no framework, no I/O; the same aggregate always gives the same lines.
 */
import Decimal from 'decimal.js';

export type PriceModel = 'per_unit' | 'graduated' | 'volume' | 'package';

/** A tier: units up to `up_to` (inclusive; "inf" for the last) at `unit_amount_decimal` each, plus `flat_amount` once. */
export interface Tier {
  up_to: string;
  unit_amount_decimal: string | null;
  flat_amount: number | null;
}

/** A price as a bill holds it (validated by usage/price-rules.ts). */
export interface Price {
  meter: string;
  currency: string;
  model: PriceModel;
  unit_amount_decimal: string | null;
  tiers: Tier[] | null;
  package_size: string | null;
  package_amount: number | null;
  /** Deducted from the aggregate before pricing. */
  free_units: string | null;
  /** A committed spend: the shortfall is charged as its own line. */
  minimum_amount: number | null;
}

/** How one tier (or the single unit price) was applied. */
export interface AppliedTier {
  up_to: string;
  units: string;
  unit_amount_decimal: string | null;
  flat_amount: number | null;
  /** Exact, in minor units, before the line's rounding. */
  amount: string;
}

export interface Rating {
  meter: string;
  currency: string;
  model: PriceModel;
  /** The meter's aggregate over the period. */
  aggregate: string;
  /** What was priced: the aggregate less the free units, never below zero. */
  billable: string;
  applied: AppliedTier[];
  /** The usage line, rounded once, half up (0: no line). */
  amount: number;
  /** The committed minimum's shortfall (0: none). */
  shortfall: number;
}

const INF = 'inf';
const upTo = (t: Tier) => (t.up_to === INF ? null : new Decimal(t.up_to));
const minorUnits = (d: Decimal) => d.toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toNumber();

function tierAmount(t: Tier, units: Decimal): Decimal {
  return units.times(t.unit_amount_decimal ?? 0).plus(t.flat_amount ?? 0);
}

function applied(t: Tier, units: Decimal, amount: Decimal): AppliedTier {
  return {
    up_to: t.up_to,
    units: units.toString(),
    unit_amount_decimal: t.unit_amount_decimal,
    flat_amount: t.flat_amount,
    amount: amount.toString(),
  };
}

/** Each unit priced in the tier it falls in; a tier's flat amount once any unit falls in it. */
function graduated(tiers: Tier[], q: Decimal): AppliedTier[] {
  const out: AppliedTier[] = [];
  let below = new Decimal(0);
  for (const t of tiers) {
    if (q.lte(below)) break;
    const top = upTo(t);
    const units = (top === null ? q : Decimal.min(q, top)).minus(below);
    out.push(applied(t, units, tierAmount(t, units)));
    if (top === null) break;
    below = top;
  }
  return out;
}

/** Every unit priced at the tier the total reaches. */
function volume(tiers: Tier[], q: Decimal): AppliedTier[] {
  if (q.isZero()) return [];
  const t = tiers.find((tier) => upTo(tier) === null || q.lte(upTo(tier)!))!;
  return [applied(t, q, tierAmount(t, q))];
}

export function rate(price: Price, aggregate: string): Rating {
  const total = new Decimal(aggregate);
  const billable = Decimal.max(0, total.minus(price.free_units ?? 0));
  let tiers: AppliedTier[];
  switch (price.model) {
    case 'per_unit': {
      const unit: Tier = { up_to: INF, unit_amount_decimal: price.unit_amount_decimal, flat_amount: null };
      tiers = billable.isZero() ? [] : [applied(unit, billable, tierAmount(unit, billable))];
      break;
    }
    case 'graduated':
      tiers = graduated(price.tiers!, billable);
      break;
    case 'volume':
      tiers = volume(price.tiers!, billable);
      break;
    case 'package': {
      const packages = billable.dividedBy(price.package_size!).ceil();
      const amount = packages.times(price.package_amount!);
      tiers = billable.isZero()
        ? []
        : [{ up_to: INF, units: billable.toString(), unit_amount_decimal: null, flat_amount: null, amount: amount.toString() }];
      break;
    }
  }
  const amount = minorUnits(tiers.reduce((sum, t) => sum.plus(t.amount), new Decimal(0)));
  const shortfall = price.minimum_amount !== null ? Math.max(0, price.minimum_amount - amount) : 0;
  return {
    meter: price.meter,
    currency: price.currency,
    model: price.model,
    aggregate: total.toString(),
    billable: billable.toString(),
    applied: tiers,
    amount,
    shortfall,
  };
}
