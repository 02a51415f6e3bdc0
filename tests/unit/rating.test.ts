/**
 * Rating against worked examples computed by hand (minor units; each line rounded once, half up),
 * the price rules' refusals, and properties: exact decimals, monotonic tiers.
 */
import fc from 'fast-check';
import { pricesOf, type PriceInput } from '../../usage/price-rules';
import { rate, type Price } from '../../usage/rating';

const price = (over: Partial<Price>): Price => ({
  meter: 'calls',
  currency: 'USD',
  model: 'per_unit',
  unit_amount_decimal: null,
  tiers: null,
  package_size: null,
  package_amount: null,
  free_units: null,
  minimum_amount: null,
  ...over,
});
const TIERS = [
  { up_to: '100', unit_amount_decimal: '10', flat_amount: null },
  { up_to: '1000', unit_amount_decimal: '5', flat_amount: null },
  { up_to: 'inf', unit_amount_decimal: '1', flat_amount: 500 },
];

describe('rate', () => {
  it.each([
    // A quarter of a cent per call.
    ['per_unit', price({ unit_amount_decimal: '0.0025' }), '1000000', 2500],
    ['per_unit, rounded once at the end', price({ unit_amount_decimal: '0.0025' }), '999', 2], // 2.4975
    ['per_unit, half up', price({ unit_amount_decimal: '0.5' }), '5', 3], // 2.5
    ['per_unit, half up below', price({ unit_amount_decimal: '0.5' }), '3', 2], // 1.5
    ['per_unit of decimal quantities', price({ unit_amount_decimal: '10' }), '0.3', 3],
    // 100 × 10 + 900 × 5 + 500 × 1 + 500 flat.
    ['graduated', price({ model: 'graduated', tiers: TIERS }), '1500', 6500],
    ['graduated inside the first tier', price({ model: 'graduated', tiers: TIERS }), '40', 400],
    ['graduated at a boundary', price({ model: 'graduated', tiers: TIERS }), '100', 1000],
    // Every unit at the tier the total reaches: 1500 × 1 + 500; 101 × 5; 100 × 10.
    ['volume past the last boundary', price({ model: 'volume', tiers: TIERS }), '1500', 2000],
    ['volume just past a boundary', price({ model: 'volume', tiers: TIERS }), '101', 505],
    ['volume at a boundary', price({ model: 'volume', tiers: TIERS }), '100', 1000],
    // ceil(250 / 100) = 3 packages of 2.50.
    ['package, rounded up', price({ model: 'package', package_size: '100', package_amount: 250 }), '250', 750],
    ['package of nothing', price({ model: 'package', package_size: '100', package_amount: 250 }), '0', 0],
    // 150 − 100 free = 50 × 2.
    ['free units', price({ unit_amount_decimal: '2', free_units: '100' }), '150', 100],
    ['free units covering it all', price({ unit_amount_decimal: '2', free_units: '100' }), '80', 0],
  ])('%s', (_name, p, aggregate, amount) => {
    expect(rate(p, aggregate).amount).toBe(amount);
  });

  it('charges a committed minimum’s shortfall as its own amount', () => {
    expect(rate(price({ unit_amount_decimal: '1', minimum_amount: 1000 }), '300')).toMatchObject({ amount: 300, shortfall: 700 });
    expect(rate(price({ unit_amount_decimal: '1', minimum_amount: 1000 }), '0')).toMatchObject({ amount: 0, shortfall: 1000 });
    expect(rate(price({ unit_amount_decimal: '1', minimum_amount: 1000 }), '5000')).toMatchObject({ amount: 5000, shortfall: 0 });
  });

  it('says which tiers it applied, with exact amounts', () => {
    expect(rate(price({ model: 'graduated', tiers: TIERS }), '1500').applied).toEqual([
      { up_to: '100', units: '100', unit_amount_decimal: '10', flat_amount: null, amount: '1000' },
      { up_to: '1000', units: '900', unit_amount_decimal: '5', flat_amount: null, amount: '4500' },
      { up_to: 'inf', units: '500', unit_amount_decimal: '1', flat_amount: 500, amount: '1000' },
    ]);
  });

  it('a graduated price of one unbounded tier is a per-unit price; graduated never decreases with usage', () => {
    const units = fc.integer({ min: 0, max: 10_000_000 }).map(String);
    const unit = fc.constantFrom('0.0025', '1', '7.5', '123.456789012345'.slice(0, 14));
    fc.assert(
      fc.property(units, unit, (q, u) => {
        const single = price({ model: 'graduated', tiers: [{ up_to: 'inf', unit_amount_decimal: u, flat_amount: null }] });
        expect(rate(single, q).amount).toBe(rate(price({ unit_amount_decimal: u }), q).amount);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 5000 }), (a, b) => {
        const [lo, hi] = a < b ? [a, b] : [b, a];
        const g = price({ model: 'graduated', tiers: TIERS });
        expect(rate(g, String(hi)).amount).toBeGreaterThanOrEqual(rate(g, String(lo)).amount);
      }),
    );
  });
});

describe('the price rules', () => {
  const refused = (inputs: PriceInput[], field: string, currency: string | null = null) => {
    let caught: { details?: { field?: string } } | undefined;
    try {
      pricesOf(inputs, currency);
    } catch (err) {
      caught = err as typeof caught;
    }
    expect(caught?.details?.field).toBe(field);
  };

  it('refuse what each model does not take, tiers out of order or without "inf", a second price per meter and currency', () => {
    refused([{ meter: 'm', currency: 'USD', model: 'per_unit' }], 'prices[0].unit_amount_decimal');
    refused([{ meter: 'm', currency: 'USD', model: 'per_unit', unit_amount_decimal: '1', package_size: 5 }], 'prices[0].package_size');
    refused(
      [{ meter: 'm', currency: 'USD', model: 'graduated', tiers: [{ up_to: 10, unit_amount_decimal: '1' }] }],
      'prices[0].tiers[0].up_to',
    );
    refused(
      [
        {
          meter: 'm',
          currency: 'USD',
          model: 'volume',
          tiers: [
            { up_to: 10, unit_amount_decimal: '1' },
            { up_to: 5, unit_amount_decimal: '1' },
            { up_to: 'inf', unit_amount_decimal: '1' },
          ],
        },
      ],
      'prices[0].tiers[1].up_to',
    );
    refused([{ meter: 'm', currency: 'USD', model: 'graduated', tiers: [{ up_to: 'inf' }] }], 'prices[0].tiers[0]');
    refused([{ meter: 'm', currency: 'USD', model: 'package', package_size: 10 }], 'prices[0].package_amount');
    refused(
      [
        { meter: 'm', currency: 'USD', model: 'per_unit', unit_amount_decimal: '1' },
        { meter: 'm', currency: 'USD', model: 'per_unit', unit_amount_decimal: '2' },
      ],
      'prices[1].meter',
    );
    refused([{ meter: 'm', currency: 'EUR', model: 'per_unit', unit_amount_decimal: '1' }], 'prices[0].currency', 'USD');
    refused([{ meter: 'm', currency: 'XXX', model: 'per_unit', unit_amount_decimal: '1' }], 'prices[0].currency');
  });

  it('keep numbers as the exact decimals they name', () => {
    const [p] = pricesOf(
      [{ meter: 'm', currency: 'USD', model: 'graduated', free_units: 0.1, tiers: [{ up_to: 'inf', unit_amount_decimal: '0.250' }] }],
      null,
    )!;
    expect(p).toMatchObject({ free_units: '0.1', tiers: [{ up_to: 'inf', unit_amount_decimal: '0.25', flat_amount: null }] });
  });
});
