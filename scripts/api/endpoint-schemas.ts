/**
 * One endpoint's request, split as the HTTP host receives it: the fields of its Encore request type
 * that are path parameters (`:billId`), the `Header<...>` fields, and the rest, which is the query
 * string of a GET and the JSON body of anything else. The OpenAPI document and the host's
 * validation are both made from this split, so they describe the same thing.
 */
import type { RouteSchemas, Schema } from '../../host/api-artifacts';
import type { Route } from '../../host/routes';
import { headerFieldsOf, refusesUnknownFields, type Declarations, type Endpoint, type HeaderField } from './declarations';

export interface Field {
  name: string;
  required: boolean;
  description?: string;
  schema: Schema;
}

export interface EndpointRequest {
  path: Field[];
  query: Field[];
  headers: Map<string, HeaderField>;
  /** The JSON body: an object schema named after the request type, when the endpoint takes one. */
  body?: { name: string; required: boolean; schema: Schema };
}

type ObjectSchema = Schema & { properties?: Record<string, Schema>; required?: string[] };

export function endpointRequest(
  route: Route,
  endpoint: Endpoint,
  requestDefs: Record<string, Schema>,
  decls: Declarations,
): EndpointRequest {
  const decl = endpoint.request;
  const request: ObjectSchema = decl ? (requestDefs[decl.name.text] as ObjectSchema) : { type: 'object', properties: {} };
  if (request?.type !== 'object') throw new Error(`request type ${decl?.name.text} must be a plain object type`);
  const fields = { ...request.properties };
  const required = new Set(request.required);
  const headers = decl ? headerFieldsOf(decl) : new Map<string, HeaderField>();
  for (const field of headers.values()) delete fields[field.property];
  const take = (name: string): Field => {
    const { description, ...schema } = fields[name] ?? { type: 'string' };
    delete fields[name];
    return { name, required: required.has(name), schema, description: typeof description === 'string' ? description : undefined };
  };

  const path = [...route.path.matchAll(/:(\w+)/g)].map(([, name]) => ({ ...take(name), required: true }));
  if (route.method === 'GET') return { path, query: Object.keys(fields).map(take), headers };

  // A request refusing unknown fields has a body even when it declares none: `{}`, and nothing else.
  const strict = decl !== undefined && refusesUnknownFields(decl, decls.checker);
  if (Object.keys(fields).length === 0 && !strict) return { path, query: [], headers };
  const bodyRequired = Object.keys(fields).filter((f) => required.has(f));
  const { additionalProperties: _, ...rest } = request;
  return {
    path,
    query: [],
    headers,
    body: {
      // The body keeps the request type's name; its header and path fields travel elsewhere.
      name: decl!.name.text,
      required: bodyRequired.length > 0,
      schema: {
        ...rest,
        description: `The body of ${route.method} ${route.path}.`,
        properties: fields,
        required: bodyRequired,
        ...(strict ? { additionalProperties: false } : {}),
      },
    },
  };
}

const objectOf = (fields: Field[]): Schema => ({
  type: 'object',
  properties: Object.fromEntries(fields.map((f) => [f.name, f.schema])),
  required: fields.filter((f) => f.required).map((f) => f.name),
});

/** What the host checks a request against: only the parts the endpoint has. */
export function validationSchemas(endpoint: Endpoint, request: EndpointRequest): RouteSchemas {
  // A raw endpoint (api.raw) has no request type: its handler checks what it reads.
  if (!endpoint.request) return {};
  return {
    ...(request.path.length ? { params: objectOf(request.path) } : {}),
    ...(request.query.length ? { querystring: objectOf(request.query) } : {}),
    ...(request.body ? { body: request.body.schema } : {}),
  };
}
