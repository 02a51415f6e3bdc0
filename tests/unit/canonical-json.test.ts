import fc from 'fast-check';
import { canonicalJson } from '../../core/canonical-json';

/** What canonicalJson wrote before (sorted copies, then JSON.stringify): stored fingerprints depend on it. */
function sortedCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedCopy);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortedCopy((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

describe('canonicalJson', () => {
  it('writes exactly what JSON.stringify writes for the value with its keys sorted', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => canonicalJson(v) === JSON.stringify(sortedCopy(v))),
      { numRuns: 2000 },
    );
  });

  it('gives equal values equal text, whatever their key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: null, y: 'é' }], c: true } })).toBe(
      canonicalJson({ a: { c: true, d: [1, { y: 'é', z: null }] }, b: 1 }),
    );
  });
});
