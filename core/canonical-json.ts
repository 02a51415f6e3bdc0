/**
 * JSON with object keys sorted at every level: equal values give equal strings. Request
 * fingerprints stored with idempotency keys are hashes of this text, so it must never change.
 *
 * It is what `JSON.stringify` writes for a copy whose keys were inserted in sorted order, a copy
 * V8 lays out with integer-like keys first, in numeric order. Written here in one pass instead
 * (building the sorted copies was a tenth of the API's CPU on 1,000-item batches); no library
 * reproduces that order, and a unit test holds the two equal on random JSON.
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? 'undefined';
}

const ARRAY_INDEX = /^(0|[1-9]\d*)$/;
const isIndex = (k: string) => ARRAY_INDEX.test(k) && Number(k) < 4294967295;

/** JSON text of `value`, or undefined where JSON.stringify would leave the member out. */
function write(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' ? undefined : JSON.stringify(value);
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return write((value as { toJSON: () => unknown }).toJSON());
  if (Array.isArray(value)) return `[${value.map((v) => write(v) ?? 'null').join(',')}]`;
  const keys = Object.keys(value).sort();
  const indexes = keys.filter(isIndex).sort((a, b) => Number(a) - Number(b));
  const parts: string[] = [];
  for (const k of indexes.length ? [...indexes, ...keys.filter((k) => !isIndex(k))] : keys) {
    const v = write((value as Record<string, unknown>)[k]);
    if (v !== undefined) parts.push(`${JSON.stringify(k)}:${v}`);
  }
  return `{${parts.join(',')}}`;
}
