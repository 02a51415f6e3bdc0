/**
 * Field checks shared by the request parsers. Each failure is an `invalid_argument` naming the
 * field, so a client can tell exactly what to fix.
 */
import { invalidArgument } from './errors';
import { currencyExponent } from './money';

export type Body = Record<string, unknown>;

export function fieldError(field: string, reason: string) {
  return invalidArgument(`${field} ${reason}`, { field, reason });
}

export function asBody(value: unknown): Body {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgument('request body must be a JSON object', { field: 'body', reason: 'not an object' });
  }
  return value as Body;
}

/** Absent and null both mean "not given". */
export function optionalString(body: Body, field: string, maxChars: number): string | null {
  const v = body[field];
  if (v === undefined || v === null) return null;
  return requiredString(body, field, maxChars);
}

/**
 * Text Postgres can store as it was sent: no NUL character (refused by Postgres) and no lone
 * surrogate (silently replaced by U+FFFD, so the stored value would differ from the request).
 */
export function isStorableText(s: string): boolean {
  return !s.includes('\u0000') && s.isWellFormed();
}

/** Every key and string inside a JSON value is storable text. */
export function isStorableJson(value: unknown): boolean {
  if (typeof value === 'string') return isStorableText(value);
  if (Array.isArray(value)) return value.every(isStorableJson);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(([k, v]) => isStorableText(k) && isStorableJson(v));
  }
  return true;
}

export function requiredString(body: Body, field: string, maxChars: number): string {
  const v = body[field];
  if (v === undefined || v === null) throw fieldError(field, 'is required');
  if (typeof v !== 'string') throw fieldError(field, 'must be a string');
  if (!isStorableText(v)) throw fieldError(field, 'must not contain NUL characters or unpaired surrogates');
  if (v.trim().length === 0) throw fieldError(field, 'must not be blank');
  // Count code points, as Postgres' char_length does.
  if ([...v].length > maxChars) throw fieldError(field, `must be at most ${maxChars} characters`);
  return v;
}

/** Integer query parameter: Encore passes numbers, the standalone host passes strings. */
export function intParam(value: unknown, field: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : /^-?\d+$/.test(String(value)) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw fieldError(field, `must be an integer from ${min} to ${max}`);
  }
  return n;
}

const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

export const isId = (value: unknown): value is string => typeof value === 'string' && ID_PATTERN.test(value);

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

export function parseId(value: unknown, field: string): string {
  if (!isId(value)) {
    throw fieldError(field, 'must be 1-64 characters of A-Z, a-z, 0-9, _ . : -');
  }
  return value;
}

/** Opaque keyset cursors: base64url JSON, validated on the way back in. */
export function encodeCursor(position: unknown[]): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

export function decodeCursor(value: unknown, check: (position: unknown[]) => boolean): unknown[] | null {
  if (value === undefined || value === null || value === '') return null;
  try {
    const position = JSON.parse(Buffer.from(String(value), 'base64url').toString('utf8'));
    if (Array.isArray(position) && check(position)) return position;
  } catch {
    // fall through to the error below
  }
  throw fieldError('cursor', 'is not a cursor this endpoint returned');
}

/** An ISO 4217 code of a currency a bill can hold. */
export function parseCurrency(value: unknown, field = 'currency'): string {
  if (typeof value !== 'string' || !/^[A-Z]{3}$/.test(value)) {
    throw fieldError(field, 'must be an ISO 4217 code of three capital letters');
  }
  if (currencyExponent(value) === undefined) throw fieldError(field, `${value} is not a supported currency`);
  return value;
}
