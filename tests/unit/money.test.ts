import { canAdd, currencyExponent, formatMinorUnits, isValidAmount, parseMinorUnits, totalsList } from '../../core/money';

describe('currencies', () => {
  it.each([
    ['USD', 2],
    ['GEL', 2],
    ['EUR', 2],
    ['JPY', 0],
    ['KRW', 0],
    ['KWD', 3],
    ['BHD', 3],
    ['CLF', 4],
  ])('knows the ISO 4217 exponent of %s is %i', (code, exponent) => {
    expect(currencyExponent(code)).toBe(exponent);
  });

  it.each(['usd', 'US', 'USDD', 'ABC', 'XAU', 'XXX', 'XTS', ''])('refuses %p', (code) => {
    expect(currencyExponent(code)).toBeUndefined();
  });
});

describe('amounts', () => {
  it.each([1, 100, Number.MAX_SAFE_INTEGER])('accepts %p minor units', (n) => expect(isValidAmount(n)).toBe(true));
  it.each([0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN, Infinity, '5', null])('refuses %p', (n) => expect(isValidAmount(n)).toBe(false));

  it('refuses a total that would leave the exact range', () => {
    expect(canAdd(Number.MAX_SAFE_INTEGER - 1, 1)).toBe(true);
    expect(canAdd(Number.MAX_SAFE_INTEGER, 1)).toBe(false);
    expect(canAdd(2 ** 52, 2 ** 52)).toBe(false);
  });

  it('parses BIGINT strings exactly and refuses what would round', () => {
    expect(parseMinorUnits('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => parseMinorUnits('9007199254740993')).toThrow();
  });
});

describe('formatting', () => {
  it.each([
    [1234, 'USD', '12.34 USD'],
    [5, 'USD', '0.05 USD'],
    [100, 'GEL', '1.00 GEL'],
    [1500, 'JPY', '1500 JPY'],
    [1005, 'KWD', '1.005 KWD'],
    [7, 'KWD', '0.007 KWD'],
    [-250, 'USD', '-2.50 USD'],
    [Number.MAX_SAFE_INTEGER, 'USD', '90071992547409.91 USD'],
  ])('formats %p %s as %p', (amount, currency, text) => {
    expect(formatMinorUnits(amount as number, currency as string)).toBe(text);
  });

  it('lists totals sorted by currency', () => {
    expect(totalsList({ USD: { amount: 1, count: 1 }, GEL: { amount: 2, count: 2 } }).map((t) => t.currency)).toEqual(['GEL', 'USD']);
  });
});
