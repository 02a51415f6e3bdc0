/**
 * The standalone host checks each request against the JSON Schemas the build derived from the
 * Encore declarations (host/api-artifacts.ts), through Fastify's own schema validation, with ajv
 * instances of our own: bodies strictly (no coercion: `"amount": "100"` is a 400; nothing removed),
 * the query string and path parameters with strings made numbers where the schema wants one. Each
 * schema is compiled once per process, however many servers the process builds.
 *
 * A refusal is the API's error body, as the hand-written parsers answered before: 400
 * `invalid_argument`, `"<field> <reason>"`, `details: { field, reason }`, the field named as a
 * client writes it (`items[3].amount`, `recurring_fee.currency`). The reason is the declaration's
 * `@errorMessage` where it has one (`x-reason` in the schema: a string, or one per keyword), else
 * one said per keyword below.
 */
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import type { FastifySchemaCompiler } from 'fastify';
import { AppError } from '../core/errors';
import { fieldError } from '../core/validate';
import type { RequestSchemas, Schema } from './api-artifacts';

/** Loose on purpose: one @, no spaces, a dot in the domain. Deliverability is the mail server's call. */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function createAjv(coerce: boolean, requests: RequestSchemas): Ajv2020 {
  const ajv = new Ajv2020({
    coerceTypes: coerce,
    // What failed and where, for the error body; only paid for on a refusal.
    verbose: true,
    allErrors: false,
    // A keyword ajv does not know is a mistake in the build; `x-reason` is ours (a declaration's @errorMessage).
    strictSchema: true,
    strictTypes: false,
    strictRequired: false,
    allowUnionTypes: true,
    // `format: uri` is what Encore's IsURL means: a URL as URL parses it (WHATWG), as before.
    formats: { email: EMAIL, uri: (s: string) => URL.canParse(s) },
  });
  ajv.addKeyword({ keyword: 'x-reason', schemaType: ['string', 'object'] });
  ajv.addSchema({ $id: requests.$id, $defs: requests.$defs });
  return ajv;
}

type Part = 'body' | 'querystring' | 'params' | 'headers';

interface Validators {
  strict: Ajv2020;
  coercing: Ajv2020;
  compiled: WeakMap<object, ValidateFunction>;
}

// Per artifacts object, so per process: every server built from them shares the compiled functions.
const byArtifacts = new WeakMap<RequestSchemas, Validators>();

function validatorsFor(requests: RequestSchemas): Validators {
  let v = byArtifacts.get(requests);
  if (!v) {
    v = { strict: createAjv(false, requests), coercing: createAjv(true, requests), compiled: new WeakMap() };
    byArtifacts.set(requests, v);
  }
  return v;
}

/** Fastify's validator compiler for the schemas of `requests` (host/server.ts sets it). */
export function requestValidatorCompiler(requests: RequestSchemas): FastifySchemaCompiler<Schema> {
  const v = validatorsFor(requests);
  return ({ schema, httpPart }) => {
    const part = httpPart as Part;
    let validate = v.compiled.get(schema);
    if (!validate) {
      validate = (part === 'body' ? v.strict : v.coercing).compile(schema);
      v.compiled.set(schema, validate);
    }
    const check = validate;
    // Fastify hands a missing body over as null; JSON `null` too, which the API has always taken as "no body".
    return (data: unknown) => {
      const value = part === 'body' ? (data ?? {}) : part === 'querystring' ? givenValues(data as Record<string, unknown>) : data;
      return check(value) ? { value } : { error: refusal(check.errors ?? [], part) };
    };
  };
}

/** `?limit=&status=open`: an empty value means the parameter was not given, as it always has. */
function givenValues(query: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(query).filter(([, value]) => value !== ''));
}

/** The API's error for what ajv found: the first failure, named as the API names fields. */
function refusal(errors: ErrorObject[], part: Part): AppError {
  const first = errors[0];
  if (!first) return new AppError('invalid_argument', `the request ${part} is invalid`);
  if (part === 'body' && first.instancePath === '' && first.keyword === 'type') {
    return new AppError('invalid_argument', 'request body must be a JSON object', { field: 'body', reason: 'not an object' });
  }
  // A nullable field or a union reports each branch's failure, then its own: that one carries the
  // field's `@errorMessage`, if it has one.
  const union = errors.find((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath && declaredReason(e));
  const error = union ?? first;
  // null where a value is needed: as good as not given.
  const missing = error.keyword === 'type' && error.data === null;
  return fieldError(fieldOf(error), missing ? 'is required' : (declaredReason(error) ?? reasonFor(error)));
}

/** `/items/3/amount` as `items[3].amount`, plus the property a `required` or `additionalProperties` error names. */
function fieldOf(e: ErrorObject): string {
  const parts = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const named = (e.params as { missingProperty?: string; additionalProperty?: string }).missingProperty ?? e.params.additionalProperty;
  if (named !== undefined) parts.push(named as string);
  return parts.reduce((field, p) => (/^\d+$/.test(p) ? `${field}[${p}]` : field ? `${field}.${p}` : p), '');
}

function declaredReason(e: ErrorObject): string | undefined {
  const declared = (e.parentSchema as Schema | undefined)?.['x-reason'];
  if (typeof declared === 'string') return declared;
  if (declared && typeof declared === 'object') return (declared as Record<string, string>)[e.keyword];
  return undefined;
}

const TYPE_REASONS: Record<string, string> = {
  string: 'must be a string',
  number: 'must be a number',
  integer: 'must be an integer',
  boolean: 'must be true or false',
  object: 'must be a JSON object',
  array: 'must be an array',
};

function reasonFor(e: ErrorObject): string {
  const schema = (e.parentSchema ?? {}) as Schema;
  const { minimum, maximum } = schema as { minimum?: number; maximum?: number };
  const range =
    schema.type === 'integer' && minimum !== undefined && maximum !== undefined
      ? `must be an integer from ${minimum} to ${maximum}`
      : undefined;
  const oneOf = Array.isArray(schema.enum) ? `must be one of: ${schema.enum.join(', ')}` : undefined;
  switch (e.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties': {
      const known = Object.keys((schema.properties as object | undefined) ?? {});
      return known.length ? `is not a field of this request (${known.join(', ')})` : 'is not a field of this request';
    }
    case 'type': {
      // `string | null` is `type: ["string", "null"]`: the type that was meant is the first.
      const [type] = ([] as string[]).concat((e.params as { type: string | string[] }).type);
      return oneOf ?? range ?? TYPE_REASONS[type] ?? `must be of type ${type}`;
    }
    case 'enum':
      return oneOf!;
    case 'minimum':
      return range ?? `must be at least ${minimum}`;
    case 'maximum':
      return range ?? `must be at most ${maximum}`;
    case 'minLength':
      return e.params.limit === 1 ? 'must not be empty' : `must be at least ${e.params.limit} characters`;
    case 'maxLength':
      return `must be at most ${e.params.limit} characters`;
    case 'minItems':
      return `must have at least ${e.params.limit} items`;
    case 'maxItems':
      return `must have at most ${e.params.limit} items`;
    case 'pattern':
      return `must match ${e.params.pattern}`;
    case 'format':
      return e.params.format === 'email'
        ? 'must be an email address'
        : e.params.format === 'uri'
          ? 'must be an absolute URL'
          : `must be a ${e.params.format}`;
    default:
      return e.message ?? 'is invalid';
  }
}
