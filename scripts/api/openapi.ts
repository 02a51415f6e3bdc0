/**
 * The OpenAPI 3.1 document, made from the code that serves the API so that it cannot drift: paths,
 * methods, scopes and headers come from the route table (host/routes.ts); summaries, parameters
 * and schemas from the Encore declarations (`<service>/api.ts`, `<service>/requests.ts`) and the
 * types they name, the request schemas being the very ones the host validates with.
 */
import { HTTP_STATUS, type ErrCode } from '../../core/errors';
import { IDEMPOTENCY_HEADERS } from '../../core/idempotency';
import type { OpenApiDocument, Operation, Parameter, Schema } from '../../host/api-artifacts';
import type { Route } from '../../host/routes';
import { ERROR_SCHEMA, packageInfo, refsIn, withRefPrefix, type Endpoint } from './declarations';
import type { EndpointRequest } from './endpoint-schemas';

const ERROR_CODE_SCHEMA = 'ErrCode';
const COMPONENTS = '#/components/schemas/';

export interface DocumentInput {
  root: string;
  routes: readonly Route[];
  /** Each route's endpoint and request, in route order. */
  endpoints: { route: Route; endpoint: Endpoint; request: EndpointRequest }[];
  /** Named schemas of both sides, references written `#/$defs/<Name>`. */
  schemas: Record<string, Schema>;
}

export function buildDocument({ root, endpoints, schemas }: DocumentInput): OpenApiDocument {
  const doc = skeleton(root);
  for (const [name, schema] of Object.entries(schemas)) doc.components.schemas[name] = withRefPrefix(schema, COMPONENTS);
  // ErrCode would otherwise be described by the opening comment of core/errors.ts, which precedes it.
  doc.components.schemas[ERROR_SCHEMA].description = 'The error body of every endpoint, as Encore answers it.';
  const codeSchema = doc.components.schemas[ERROR_CODE_SCHEMA];
  if (codeSchema) codeSchema.description = `The Encore error code; it decides the HTTP status: ${statusList(() => true)}.`;

  for (const { route, endpoint, request } of endpoints) {
    const item = (doc.paths[route.path.replace(/:(\w+)/g, '{$1}')] ??= {});
    item[route.method.toLowerCase() as 'get' | 'post' | 'patch' | 'delete'] = toOperation(route, endpoint, request, doc);
    if (!doc.tags.some((t) => t.name === endpoint.service)) {
      doc.tags.push({ name: endpoint.service, description: SERVICE_DESCRIPTIONS[endpoint.service] ?? `The ${endpoint.service} service.` });
    }
  }
  pruneUnreferenced(doc);
  return doc;
}

/** One line per Encore service: the tags of the document. */
const SERVICE_DESCRIPTIONS: Record<string, string> = {
  bills:
    'Bills and their line items: create, read, list, close and cancel bills; add line items one by one or up to 1,000 at once, list them; reconciliation for operators.',
  invoices: 'The invoice of a closed bill for its whole life: its PDF and delivery, payments, credit notes, void and write-off.',
  webhooks:
    'Receivers of signed events (bill.created, bill.closed, bill.renewed, series.cancelled, invoice.sent, invoice.failed): register, change, rotate secrets, remove; list and retry deliveries.',
};

function skeleton(root: string): OpenApiDocument {
  const pkg = packageInfo(root);
  const errorResponse = (description: string) => ({
    description,
    headers: ERROR_HEADERS,
    content: { 'application/json': { schema: { $ref: `${COMPONENTS}${ERROR_SCHEMA}` } } },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Fees API',
      version: pkg.version,
      description:
        `${pkg.description}. Endpoints need an API key (Authorize) unless the server runs with authentication ` +
        'off. POSTs accept an idempotency key: a retry with the same key and request returns the first answer instead of ' +
        'acting twice.',
      // An SPDX expression; package.json's UNLICENSED (no licence granted) is not one.
      license:
        pkg.license === 'UNLICENSED'
          ? { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' }
          : { name: pkg.license, identifier: pkg.license },
    },
    // Relative: requests go to the server that served the document, wherever it runs.
    servers: [{ url: '/', description: 'this server' }],
    tags: [],
    paths: {},
    components: {
      schemas: {},
      responses: {
        ClientError: errorResponse(`The request was refused: ${statusList((s) => s < 500)}.`),
        ServerError: errorResponse(`The service failed: ${statusList((s) => s >= 500)}.`),
      },
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'fees_...',
          description:
            'An API key (`fees_...`) sent as `Authorization: Bearer <key>`. Each operation names the scope it ' +
            'needs in `x-required-scope`; an `admin` key may call every endpoint.',
        },
      },
    },
  };
}

/** "`invalid_argument` 400, ..." for the error codes whose status passes `keep`. */
function statusList(keep: (status: number) => boolean): string {
  return (Object.entries(HTTP_STATUS) as [ErrCode, number][])
    .filter(([, status]) => keep(status))
    .map(([code, status]) => `\`${code}\` ${status}`)
    .join(', ');
}

function toOperation(route: Route, endpoint: Endpoint, request: EndpointRequest, doc: OpenApiDocument): Operation {
  const parameter = (where: 'path' | 'query', f: EndpointRequest['path'][number]): Parameter => ({
    name: f.name,
    in: where,
    required: f.required,
    ...(f.description ? { description: f.description } : {}),
    schema: withRefPrefix(f.schema, COMPONENTS),
  });
  const parameters: Parameter[] = request.path.map((f) => parameter('path', f));
  for (const name of route.headers) {
    const field = [...request.headers.values()].find((f) => f.header === name);
    parameters.push({
      name,
      in: 'header',
      required: field ? !field.optional : false,
      schema: { type: 'string' },
      description: field?.doc ?? headerDoc(name),
    });
  }
  parameters.push(...request.query.map((f) => parameter('query', f)));

  let requestBody: Operation['requestBody'];
  const body = request.body;
  // A body that may hold no field at all (`{}` or nothing) is not documented as one.
  if (body && Object.keys(body.schema.properties as object).length > 0) {
    doc.components.schemas[body.name] = withRefPrefix(body.schema, COMPONENTS);
    requestBody = { required: body.required, content: { 'application/json': { schema: { $ref: `${COMPONENTS}${body.name}` } } } };
  }

  const [summary, ...more] = endpoint.doc.split(/(?<=\.)\s+/);
  return {
    operationId: `${endpoint.service}.${endpoint.name}`,
    tags: [endpoint.service],
    summary,
    description: [...more, `Needs an API key with scope \`${route.scope}\` (or \`admin\`).`].join('\n\n'),
    'x-required-scope': route.scope,
    security: [{ bearerAuth: [] }],
    parameters,
    ...(requestBody ? { requestBody } : {}),
    responses: {
      200: success(endpoint, doc),
      '4XX': { $ref: '#/components/responses/ClientError' },
      '5XX': { $ref: '#/components/responses/ServerError' },
    },
  };
}

/** Headers on every answer: the request id (the caller's valid `X-Request-Id`, else a new one). */
const REQUEST_ID_HEADER = {
  'X-Request-Id': {
    description: "The request's id, in every log line about it: the caller's own `X-Request-Id` when valid, else a new UUID.",
    required: true,
    schema: { type: 'string', minLength: 1 },
  },
};

/** And on refusals and failures: when to retry, for 429 and for a 503 that knows. */
const ERROR_HEADERS = {
  ...REQUEST_ID_HEADER,
  'Retry-After': {
    description: 'Seconds to wait before retrying (429 `resource_exhausted`, some 503 `unavailable`).',
    required: false,
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
};

function success(endpoint: Endpoint, doc: OpenApiDocument) {
  if (endpoint.rawContentTypes) {
    return {
      description: endpoint.doc,
      headers: {
        ...REQUEST_ID_HEADER,
        'Content-Disposition': { description: 'The file name of the document.', required: true, schema: { type: 'string' } },
      },
      content: Object.fromEntries(endpoint.rawContentTypes.map((type) => [type, { schema: { type: 'string', contentMediaType: type } }])),
    };
  }
  if (!endpoint.response) throw new Error(`${endpoint.service}.${endpoint.name}: the handler must declare Promise<ResponseType>`);
  const name = endpoint.response.name.text;
  const described = doc.components.schemas[name]?.description;
  return {
    description: typeof described === 'string' ? described : name,
    headers: REQUEST_ID_HEADER,
    content: { 'application/json': { schema: { $ref: `${COMPONENTS}${name}` } } },
  };
}

function headerDoc(name: string): string | undefined {
  if (!(IDEMPOTENCY_HEADERS as readonly string[]).includes(name)) return undefined;
  const others = IDEMPOTENCY_HEADERS.filter((h) => h !== name)
    .map((h) => `\`${h}\``)
    .join(', ');
  return (
    'Idempotency key, 1-255 visible ASCII characters: a retry with the same key and request returns the first ' +
    `answer; the same key with a different request is refused. ${others} is accepted instead.`
  );
}

/** Drops schemas nothing refers to: request types (their fields become parameters and bodies), Encore's `Header<...>`. */
function pruneUnreferenced(doc: OpenApiDocument): void {
  const keep = new Set<string>();
  const pending = [...refsIn(doc.paths), ...refsIn(doc.components.responses)];
  for (let ref = pending.pop(); ref !== undefined; ref = pending.pop()) {
    if (!ref.startsWith(COMPONENTS) || keep.has(ref)) continue;
    keep.add(ref);
    pending.push(...refsIn(doc.components.schemas[ref.slice(COMPONENTS.length)]));
  }
  for (const name of Object.keys(doc.components.schemas)) {
    if (!keep.has(COMPONENTS + name)) delete doc.components.schemas[name];
  }
}
