/**
 * Tax arithmetic against worked examples computed by hand: one rounding per rate and currency,
 * half up, in exact decimals; credit splits that always add up.
 */
import fc from 'fast-check';
import type { AppliedTaxRate } from '../../invoices/document';
import { EXEMPT_RATE, allocate, categoryOf, splitCredit, taxDocument, taxOf } from '../../invoices/tax';

const rate = (code: string, percentage: string): AppliedTaxRate => ({
  code,
  name: code,
  percentage,
  category: categoryOf(percentage),
  exemption_reason: null,
});
const VAT19 = rate('VAT19', '19');
const VAT7 = rate('VAT7', '7');

describe('taxOf', () => {
  it.each([
    [10000, '19', 1900],
    [333, '7', 23], // 23.31
    [50, '7', 4], // 3.5 → half up
    [150, '7', 11], // 10.5 → half up
    [1, '0.5', 0], // 0.005 → 0
    [100, '0.5', 1], // 0.5 → half up
    [123456789, '19.6', 24197531], // 24197530.644
    [9007199254740991, '100', 9007199254740991],
    [1000, '0', 0],
  ])('%i minor units at %s %% is %i', (net, percentage, tax) => {
    expect(taxOf(net, percentage)).toBe(tax);
  });
  it('never passes through a float: 0.1 + 0.2 style inputs stay exact', () => {
    expect(taxOf(1_000_000_000_005, '10')).toBe(100_000_000_001); // 100000000000.5 → half up
  });
});

describe('taxDocument', () => {
  it('rounds once per rate and currency, not per line', () => {
    // Three lines of 0.05 at 7 %: per line 0.0035 → 0 each; once on 0.15 → 0.0105 → 0.01.
    const { taxes, totals } = taxDocument([
      { currency: 'EUR', rate: VAT7, net: 5 },
      { currency: 'EUR', rate: VAT7, net: 5 },
      { currency: 'EUR', rate: VAT7, net: 5 },
    ]);
    expect(taxes).toEqual([{ currency: 'EUR', rate: VAT7, net: 15, tax: 1 }]);
    expect(totals).toEqual([{ currency: 'EUR', net: 15, tax: 1, gross: 16 }]);
  });
  it('keeps rates and currencies apart, untaxed lines in the net only, ordered by currency then code', () => {
    const { taxes, totals } = taxDocument([
      { currency: 'USD', rate: VAT7, net: 333 },
      { currency: 'EUR', rate: VAT19, net: 10000 },
      { currency: 'EUR', rate: null, net: 250 },
      { currency: 'EUR', rate: VAT7, net: 5000 },
      { currency: 'USD', rate: VAT19, net: 2000 },
    ]);
    expect(taxes.map((t) => [t.currency, t.rate.code, t.net, t.tax])).toEqual([
      ['EUR', 'VAT19', 10000, 1900],
      ['EUR', 'VAT7', 5000, 350],
      ['USD', 'VAT19', 2000, 380],
      ['USD', 'VAT7', 333, 23],
    ]);
    expect(totals).toEqual([
      { currency: 'EUR', net: 15250, tax: 2250, gross: 17500 },
      { currency: 'USD', net: 2333, tax: 403, gross: 2736 },
    ]);
  });
  it('taxes an exempt or zero-rated line at nothing', () => {
    const { taxes } = taxDocument([
      { currency: 'EUR', rate: EXEMPT_RATE, net: 1000 },
      { currency: 'EUR', rate: rate('ZERO', '0'), net: 500 },
    ]);
    expect(taxes.map((t) => [t.rate.category, t.tax])).toEqual([
      ['E', 0],
      ['Z', 0],
    ]);
  });
  it('gives the same document whatever the order of its lines', () => {
    const line = fc.record({
      currency: fc.constantFrom('EUR', 'USD'),
      rate: fc.constantFrom(VAT19, VAT7, null),
      net: fc.integer({ min: 1, max: 1_000_000 }),
    });
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), (lines) => {
        expect(taxDocument([...lines].reverse())).toEqual(taxDocument(lines));
      }),
    );
  });
});

describe('allocate and splitCredit', () => {
  it('shares units in proportion, the remainders to the largest fractions, always adding up', () => {
    expect(allocate(100, [1, 1, 1])).toEqual([34, 33, 33]);
    expect(allocate(10, [0, 5, 5])).toEqual([0, 5, 5]);
    expect(allocate(7, [0, 0])).toEqual([0, 0]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), fc.array(fc.integer({ min: 0, max: 1e9 }), { minLength: 1, maxLength: 8 }), (n, w) => {
        const shares = allocate(n, w);
        if (w.some((x) => x > 0)) expect(shares.reduce((a, b) => a + b, 0)).toBe(n);
        for (const s of shares) expect(s).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  const invoice = taxDocument([
    { currency: 'EUR', rate: VAT19, net: 10000 },
    { currency: 'EUR', rate: VAT7, net: 5000 },
  ]);

  it('splits a credit as its invoice was split (worked example)', () => {
    // Gross 119.00 at 19 % and 53.50 at 7 % (of 172.50); 17.25 is a tenth: 11.90 and 5.35.
    const { taxes, total } = splitCredit(1725, 'EUR', invoice);
    expect(taxes.map((t) => [t.rate.code, t.net, t.tax])).toEqual([
      ['VAT19', 1000, 190],
      ['VAT7', 500, 35],
    ]);
    expect(total).toEqual({ currency: 'EUR', net: 1500, tax: 225, gross: 1725 });
  });
  it('gives back exactly the invoice’s net and tax on a full credit', () => {
    const { taxes, total } = splitCredit(17250, 'EUR', invoice);
    expect(taxes.map((t) => [t.net, t.tax])).toEqual(invoice.taxes.map((t) => [t.net, t.tax]));
    expect(total).toEqual(invoice.totals[0]);
  });
  it('always adds up to the credited gross', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 17250 }), (gross) => {
        const { taxes, total } = splitCredit(gross, 'EUR', invoice);
        expect(total.net + total.tax).toBe(gross);
        expect(taxes.reduce((n, t) => n + t.net + t.tax, 0)).toBe(gross);
      }),
    );
  });
});
