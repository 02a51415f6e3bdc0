/**
 * The rules of a bill's prices that their shape cannot say: the fields each model needs and only
 * those, tiers in ascending order ending at "inf", one price per meter and currency, the bill's
 * currency. Pure; a refusal names the field (`prices[1].tiers[2].up_to`).
 */
import Decimal from 'decimal.js';
import { checkSupportedCurrency, fieldError } from '../core/validate';
import type { Price, PriceModel, Tier } from './rating';
import type { UsageAlert } from './types';

/** A price as a request gives it, its shape checked. */
export interface PriceInput {
  meter: string;
  currency: string;
  model: PriceModel;
  unit_amount_decimal?: string | null;
  tiers?: { up_to: number | 'inf'; unit_amount_decimal?: string | null; flat_amount?: number | null }[] | null;
  package_size?: number | null;
  package_amount?: number | null;
  free_units?: number | null;
  minimum_amount?: number | null;
}

export const MAX_PRICES = 20;
export const MAX_USAGE_ALERTS = 10;

/** What each model takes; anything else is refused, so a misplaced field is never silently ignored. */
const FIELDS: Record<PriceModel, (keyof PriceInput)[]> = {
  per_unit: ['unit_amount_decimal'],
  graduated: ['tiers'],
  volume: ['tiers'],
  package: ['package_size', 'package_amount'],
};
const MODEL_FIELDS: (keyof PriceInput)[] = ['unit_amount_decimal', 'tiers', 'package_size', 'package_amount'];

/** A number as exact decimal text (JSON numbers are read as the shortest decimal that names them). */
const decimalText = (n: number) => new Decimal(String(n)).toString();

function tiersOf(input: NonNullable<PriceInput['tiers']>, at: string): Tier[] {
  let below: Decimal | null = null;
  return input.map((t, i) => {
    const field = `${at}.tiers[${i}]`;
    const last = i === input.length - 1;
    if ((t.up_to === 'inf') !== last)
      throw fieldError(`${field}.up_to`, last ? 'must be "inf" in the last tier' : 'may be "inf" only in the last tier');
    if (t.up_to !== 'inf') {
      const top = new Decimal(decimalText(t.up_to));
      if (below !== null && top.lte(below))
        throw fieldError(`${field}.up_to`, "must be above the previous tier's: tiers go in ascending order");
      if (top.isZero()) throw fieldError(`${field}.up_to`, 'must be above 0');
      below = top;
    }
    if (t.unit_amount_decimal == null && t.flat_amount == null) {
      throw fieldError(field, 'needs unit_amount_decimal, flat_amount or both');
    }
    return {
      up_to: t.up_to === 'inf' ? 'inf' : decimalText(t.up_to),
      unit_amount_decimal: t.unit_amount_decimal == null ? null : new Decimal(t.unit_amount_decimal).toString(),
      flat_amount: t.flat_amount ?? null,
    };
  });
}

/** A bill's usage alerts: currencies that exist, each threshold once. */
export function usageAlertsOf(inputs: { currency: string; amount: number }[] | null | undefined): UsageAlert[] | null {
  if (inputs == null) return null;
  if (inputs.length > MAX_USAGE_ALERTS) throw fieldError('usage_alerts', `must be at most ${MAX_USAGE_ALERTS} thresholds`);
  const seen = new Set<string>();
  return inputs.map((a, i) => {
    checkSupportedCurrency(a.currency, `usage_alerts[${i}].currency`);
    const key = `${a.currency} ${a.amount}`;
    if (seen.has(key)) throw fieldError(`usage_alerts[${i}].amount`, 'is listed twice');
    seen.add(key);
    return { currency: a.currency, amount: a.amount };
  });
}

export function pricesOf(inputs: PriceInput[] | null | undefined, billCurrency: string | null): Price[] | null {
  if (inputs == null) return null;
  if (inputs.length > MAX_PRICES) throw fieldError('prices', `must be at most ${MAX_PRICES} prices`);
  const seen = new Set<string>();
  return inputs.map((p, i) => {
    const at = `prices[${i}]`;
    checkSupportedCurrency(p.currency, `${at}.currency`);
    if (billCurrency !== null && p.currency !== billCurrency) {
      throw fieldError(`${at}.currency`, `must be the bill's currency, ${billCurrency}`);
    }
    const key = `${p.meter} ${p.currency}`;
    if (seen.has(key)) throw fieldError(`${at}.meter`, `has a price in ${p.currency} already: one price per meter and currency`);
    seen.add(key);
    for (const f of FIELDS[p.model]) {
      if (p[f] == null) throw fieldError(`${at}.${f}`, `is required for the ${p.model} model`);
    }
    for (const f of MODEL_FIELDS) {
      if (!FIELDS[p.model].includes(f) && p[f] != null) throw fieldError(`${at}.${f}`, `is not a field of the ${p.model} model`);
    }
    return {
      meter: p.meter,
      currency: p.currency,
      model: p.model,
      unit_amount_decimal: p.unit_amount_decimal == null ? null : new Decimal(p.unit_amount_decimal).toString(),
      tiers: p.tiers == null ? null : tiersOf(p.tiers, at),
      package_size: p.package_size == null ? null : decimalText(p.package_size),
      package_amount: p.package_amount ?? null,
      free_units: p.free_units == null ? null : decimalText(p.free_units),
      minimum_amount: p.minimum_amount ?? null,
    };
  });
}
