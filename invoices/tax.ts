/**
 * Tax on a document, in exact decimal arithmetic: the net of each rate and currency is taxed once,
 * rounded once to the currency's minor unit, half up (never per line, so the tax of a thousand small
 * lines is the tax of their sum, as EN 16931's BR-CO-17 computes it). Pure: no framework, no I/O.
 */
import Decimal from 'decimal.js';
import type { AppliedTaxRate, CurrencyTotals, TaxSubtotal } from './document';

/** A percentage as the API shows it: the shortest exact decimal ("19.000000" from NUMERIC → "19"). */
export const percentageText = (percentage: string) => new Decimal(percentage).toString();

/** Half up, to a whole number of minor units. */
const minorUnits = (value: Decimal) => value.toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toNumber();

/** The EN 16931 category of a rate of this percentage. */
export const categoryOf = (percentage: string): AppliedTaxRate['category'] => (new Decimal(percentage).isZero() ? 'Z' : 'S');

/** What a tax-exempt customer's lines are taxed at: nothing, with the note that says why. */
export const EXEMPT_RATE: AppliedTaxRate = {
  code: 'EXEMPT',
  name: 'Tax exempt',
  percentage: '0',
  category: 'E',
  exemption_reason: 'Exempt from tax: the customer is tax exempt',
};

/** Tax of `net` minor units at `percentage` percent, rounded once, half up. */
export const taxOf = (net: number, percentage: string): number => minorUnits(new Decimal(net).times(percentage).dividedBy(100));

/** The net of one rate (null: not subject to tax) in one currency, before tax. */
export interface TaxableAmount {
  currency: string;
  rate: AppliedTaxRate | null;
  net: number;
}

const byCurrencyThenCode = (a: TaxSubtotal, b: TaxSubtotal) =>
  a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : a.rate.code < b.rate.code ? -1 : a.rate.code > b.rate.code ? 1 : 0;

/** Taxes per rate and currency and the totals per currency of a document's taxable amounts. */
export function taxDocument(amounts: TaxableAmount[]): { taxes: TaxSubtotal[]; totals: CurrencyTotals[] } {
  const taxes = new Map<string, TaxSubtotal>();
  const totals = new Map<string, CurrencyTotals>();
  for (const { currency, rate, net } of amounts) {
    const total = totals.get(currency) ?? { currency, net: 0, tax: 0, gross: 0 };
    totals.set(currency, { ...total, net: total.net + net });
    if (!rate) continue;
    const key = `${currency} ${rate.code}`;
    const subtotal = taxes.get(key) ?? { currency, rate, net: 0, tax: 0 };
    taxes.set(key, { ...subtotal, net: subtotal.net + net });
  }
  const taxed = [...taxes.values()].map((t) => ({ ...t, tax: taxOf(t.net, t.rate.percentage) })).sort(byCurrencyThenCode);
  for (const t of taxed) {
    const total = totals.get(t.currency)!;
    totals.set(t.currency, { ...total, tax: total.tax + t.tax });
  }
  const list = [...totals.values()].map((t) => ({ ...t, gross: t.net + t.tax })).sort((a, b) => (a.currency < b.currency ? -1 : 1));
  return { taxes: taxed, totals: list };
}

/**
 * Splits `parts` whole units over `weights` in proportion, each share rounded down, the units left
 * going to the largest remainders (the earliest first on a tie): the shares always add up to `parts`.
 */
export function allocate(parts: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum === 0) return weights.map(() => 0);
  const exact = weights.map((w) => new Decimal(parts).times(w).dividedBy(sum));
  const shares = exact.map((e) => e.floor().toNumber());
  let left = parts - shares.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, rest: e.minus(e.floor()) })).sort((a, b) => b.rest.comparedTo(a.rest) || a.i - b.i);
  for (const { i } of order) {
    if (left === 0) break;
    shares[i] += 1;
    left -= 1;
  }
  return shares;
}

/**
 * The tax split of a credit of `gross` minor units in `currency`, made as its invoice was split:
 * the gross is shared over the invoice's parts in that currency (each rate's gross, and the untaxed
 * net) in proportion, and each rate's share is split into net and tax in its invoice's proportion.
 * A full credit of a currency therefore gives back exactly the invoice's net and tax per rate.
 */
export function splitCredit(
  gross: number,
  currency: string,
  invoice: { taxes: TaxSubtotal[]; totals: CurrencyTotals[] },
): { taxes: TaxSubtotal[]; total: CurrencyTotals } {
  const rates = invoice.taxes.filter((t) => t.currency === currency);
  const totals = invoice.totals.find((t) => t.currency === currency);
  const untaxedNet = (totals?.net ?? 0) - rates.reduce((n, t) => n + t.net, 0);
  const shares = allocate(gross, [...rates.map((t) => t.net + t.tax), untaxedNet]);
  const taxes = rates.map((t, i) => {
    const tax = t.net + t.tax === 0 ? 0 : minorUnits(new Decimal(shares[i]).times(t.tax).dividedBy(t.net + t.tax));
    return { currency, rate: t.rate, net: shares[i] - tax, tax };
  });
  const tax = taxes.reduce((n, t) => n + t.tax, 0);
  return { taxes, total: { currency, net: gross - tax, tax, gross } };
}
