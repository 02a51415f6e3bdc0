/**
 * Rules shared by the use cases, run after a request's shape was checked (by Encore, or by the
 * standalone host against the same declarations): what a type cannot say. Each failure is an
 * `invalid_argument` naming the field, so a client can tell exactly what to fix.
 */
import { invalidArgument } from './errors';
import { currencyExponent } from './money';

export function fieldError(field: string, reason: string) {
  return invalidArgument(`${field} ${reason}`, { field, reason });
}

/**
 * Text Postgres can store as it was sent: no NUL character (refused by Postgres) and no lone
 * surrogate (silently replaced by U+FFFD, so the stored value would differ from the request).
 */
export function isStorableText(s: string): boolean {
  return !s.includes('\u0000') && s.isWellFormed();
}

/** Free-form JSON the client owns: its keys are stored too, and a refusal names the field as a whole. */
const FREE_FORM = new Set(['metadata']);

/**
 * Refuses any string in `input` that Postgres cannot store as sent, naming the field that holds it
 * (`items[3].description`, `metadata`). `input` is what a use case is about to store: the fields
 * it took from the request, so that an ignored unknown field is not refused for its content.
 */
export function checkStorable(input: object): void {
  const field = unstorable(input, '', false);
  if (field !== null) throw fieldError(field, 'must not contain NUL characters or unpaired surrogates');
}

function unstorable(value: unknown, field: string, freeForm: boolean): string | null {
  if (typeof value === 'string') return isStorableText(value) ? null : field;
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unstorable(value[i], freeForm ? field : `${field}[${i}]`, freeForm);
      if (found !== null) return found;
    }
    return null;
  }
  for (const [key, v] of Object.entries(value)) {
    if (freeForm && !isStorableText(key)) return field;
    const found = freeForm ? unstorable(v, field, true) : unstorable(v, field ? `${field}.${key}` : key, FREE_FORM.has(key));
    if (found !== null) return found;
  }
  return null;
}

/** A page size: the fallback when absent; at most `max`, which configuration may set below what the type allows. */
export function pageSize(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined) return fallback;
  if (limit > max) throw fieldError('limit', `must be an integer from 1 to ${max}`);
  return limit;
}

const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** An id as the API takes one (the `Id` of invoices/requests.ts): for ids that come back inside a cursor. */
export const isId = (value: unknown): value is string => typeof value === 'string' && ID_PATTERN.test(value);

/** An id a raw endpoint (api.raw, which has no request type) reads from its path. */
export function parseId(value: unknown, field: string): string {
  if (!isId(value)) {
    throw fieldError(field, 'must be 1-64 characters of A-Z, a-z, 0-9, _ . : -');
  }
  return value;
}

/** An instant as the service writes one (`toISOString`: UTC, milliseconds), and nothing else. */
export function isIsoInstant(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(value) &&
    !Number.isNaN(Date.parse(value)) &&
    new Date(value).toISOString() === value
  );
}

const BIGINT_MAX = 2n ** 63n - 1n;

/** A BIGINT position as the service writes one: a decimal without leading zeros that Postgres can hold. */
export function isPosition(value: unknown): value is string {
  return typeof value === 'string' && /^(0|[1-9]\d{0,18})$/.test(value) && BigInt(value) <= BIGINT_MAX;
}

/** Opaque keyset cursors: base64url JSON, validated on the way back in. */
export function encodeCursor(position: unknown[]): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

export function decodeCursor(value: string | undefined, check: (position: unknown[]) => boolean): unknown[] | null {
  if (value === undefined || value === '') return null;
  try {
    const position = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    if (Array.isArray(position) && check(position)) return position;
  } catch {
    // fall through to the error below
  }
  throw fieldError('cursor', 'is not a cursor this endpoint returned');
}

/** A currency a bill can hold, given a code of the right shape (three capital letters). */
export function checkSupportedCurrency(code: string, field = 'currency'): string {
  if (currencyExponent(code) === undefined) throw fieldError(field, `${code} is not a supported currency`);
  return code;
}

/** An ISO 4217 code of a currency a bill can hold, from anything (a workflow validator's input). */
export function parseCurrency(value: unknown, field = 'currency'): string {
  if (typeof value !== 'string' || !/^[A-Z]{3}$/.test(value)) {
    throw fieldError(field, 'must be an ISO 4217 code of three capital letters');
  }
  return checkSupportedCurrency(value, field);
}
