/**
 * Money as integer minor units. Amounts are JS numbers that must stay safe integers (JSON numbers
 * on the wire, BIGINT in Postgres); totals are refused before they could leave the safe range, so
 * no arithmetic here ever rounds. Pure: used by the workflow sandbox as well as the hosts.
 */
import currencyCodes from 'currency-codes';

// ISO 4217 codes that are not money a bill can be denominated in (metals, bond units, test codes).
const NOT_BILLABLE = new Set(['XAG', 'XAU', 'XBA', 'XBB', 'XBC', 'XBD', 'XDR', 'XPD', 'XPT', 'XSU', 'XTS', 'XUA', 'XXX']);

// Looked up once per code: the package searches its whole list on every call, 1,000 times a batch.
const exponents = new Map<string, number | undefined>();

/** Number of minor-unit digits (the ISO 4217 exponent), or undefined when not a billable currency. */
export function currencyExponent(code: string): number | undefined {
  if (!/^[A-Z]{3}$/.test(code) || NOT_BILLABLE.has(code)) return undefined;
  if (!exponents.has(code)) exponents.set(code, currencyCodes.code(code)?.digits);
  return exponents.get(code);
}

export function isSupportedCurrency(code: string): boolean {
  return currencyExponent(code) !== undefined;
}

export function isValidAmount(amount: unknown): amount is number {
  return typeof amount === 'number' && Number.isSafeInteger(amount) && amount > 0;
}

/** True when `total + amount` is still exactly representable (and fits BIGINT). */
export function canAdd(total: number, amount: number): boolean {
  return Number.isSafeInteger(total + amount);
}

/** "12.34 USD", "1500 JPY", "1.005 KWD": exact, locale-independent, negative-safe. */
export function formatMinorUnits(amount: number, currency: string): string {
  const exponent = currencyExponent(currency) ?? 2;
  const sign = amount < 0 ? '-' : '';
  const digits = Math.abs(amount)
    .toString()
    .padStart(exponent + 1, '0');
  const major = digits.slice(0, digits.length - exponent);
  const minor = digits.slice(digits.length - exponent);
  return `${sign}${major}${exponent > 0 ? `.${minor}` : ''} ${currency}`;
}

/** Parse a BIGINT column (pg returns it as a string) without losing precision silently. */
export function parseMinorUnits(value: string | number): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`amount ${value} is outside the safe integer range`);
  return n;
}

export interface CurrencyTotal {
  currency: string;
  amount: number;
  line_item_count: number;
  formatted: string;
}

export type TotalsByCurrency = Record<string, { amount: number; count: number }>;

export function sameTotals(a: TotalsByCurrency, b: TotalsByCurrency): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] && a[k].amount === b[k].amount && a[k].count === b[k].count);
}

/** Totals in their API shape, sorted by currency so the output is stable. */
export function totalsList(totals: TotalsByCurrency): CurrencyTotal[] {
  return Object.keys(totals)
    .sort()
    .map((currency) => ({
      currency,
      amount: totals[currency].amount,
      line_item_count: totals[currency].count,
      formatted: formatMinorUnits(totals[currency].amount, currency),
    }));
}

/** The sum of two sets of totals, per currency. */
export function addTotals(a: TotalsByCurrency, b: TotalsByCurrency): TotalsByCurrency {
  const sum: TotalsByCurrency = { ...a };
  for (const [currency, t] of Object.entries(b)) {
    const base = sum[currency] ?? { amount: 0, count: 0 };
    sum[currency] = { amount: base.amount + t.amount, count: base.count + t.count };
  }
  return sum;
}
