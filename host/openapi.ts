/**
 * The OpenAPI 3.1 document, generated from the code that serves the API so that it cannot drift:
 * paths, methods, scopes and headers come from the route table (host/routes.ts); summaries,
 * parameters and schemas from the Encore declarations (`<service>/api.ts`) and the TypeScript
 * types they name, read with the TypeScript compiler and ts-json-schema-generator.
 *
 * It builds a TypeScript program, which takes a second or two: callers generate it once, lazily.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { createFormatter, createParser, DEFAULT_CONFIG, SchemaGenerator, type CompletedConfig } from 'ts-json-schema-generator';
import { HTTP_STATUS, type ErrCode } from '../core/errors';
import { IDEMPOTENCY_HEADERS } from '../core/idempotency';
import type { Route } from './routes';

/** A JSON Schema (2020-12, the dialect OpenAPI 3.1 embeds). */
export type Schema = { [keyword: string]: unknown };

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  description?: string;
  schema: Schema;
}

export interface Operation {
  operationId: string;
  tags: string[];
  summary: string;
  description: string;
  'x-required-scope': Route['scope'];
  security: Record<string, string[]>[];
  parameters: Parameter[];
  requestBody?: { required: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<string, unknown>;
}

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string; license: { name: string; identifier: string } };
  servers: { url: string; description: string }[];
  tags: { name: string; description: string }[];
  paths: Record<string, Partial<Record<'get' | 'post' | 'patch' | 'delete', Operation>>>;
  components: {
    schemas: Record<string, Schema>;
    responses: Record<string, unknown>;
    securitySchemes: Record<string, unknown>;
  };
}

type Declaration = ts.InterfaceDeclaration | ts.TypeAliasDeclaration;

/** One `api()` / `api.raw()` declaration of an Encore service. */
interface Endpoint {
  service: string;
  name: string;
  method: string;
  path: string;
  doc: string;
  request?: Declaration;
  /** The `T` of the handler's `Promise<T>`; absent for raw endpoints. */
  response?: Declaration;
  /** What a raw endpoint writes as its content-type. */
  rawContentType?: string;
}

const ERROR_SCHEMA = 'ErrorBody';
const ERROR_CODE_SCHEMA = 'ErrCode';

export function buildOpenApiDocument(routes: readonly Route[], root: string): OpenApiDocument {
  const apiFiles = readdirSync(root)
    .filter((d) => existsSync(path.join(root, d, 'encore.service.ts')) && existsSync(path.join(root, d, 'api.ts')))
    .map((d) => path.join(root, d, 'api.ts'));
  const errorsFile = path.join(root, 'core', 'errors.ts');
  const program = createProgram(root, [...apiFiles, errorsFile]);
  const checker = program.getTypeChecker();
  const endpoints = apiFiles.flatMap((f) => readEndpoints(program.getSourceFile(f)!, checker));

  const errorBody = findDeclaration(program.getSourceFile(errorsFile)!, ERROR_SCHEMA);
  const roots = [errorBody, ...endpoints.flatMap((e) => [e.request, e.response]).filter((d) => d !== undefined)];
  const definitions = generateSchemas(program, [...new Set(roots)]);
  const schemaOf = (decl: Declaration) => definitions[decl.name.text];

  const doc = skeleton(root);
  // Request types are not shared as they are: their fields become parameters and bodies.
  const requestTypes = new Set(endpoints.flatMap((e) => (e.request ? [e.request.name.text] : [])));
  for (const [name, schema] of Object.entries(definitions)) {
    if (!requestTypes.has(name)) doc.components.schemas[name] = schema;
  }
  // ErrCode would otherwise be described by the opening comment of core/errors.ts, which precedes it.
  doc.components.schemas[ERROR_SCHEMA].description = 'The error body of every endpoint, as Encore answers it.';
  const codeSchema = doc.components.schemas[ERROR_CODE_SCHEMA];
  if (codeSchema) codeSchema.description = `The Encore error code; it decides the HTTP status: ${statusList(() => true)}.`;

  for (const route of routes) {
    const endpoint = endpoints.find((e) => e.method === route.method && e.path === route.path);
    if (!endpoint) throw new Error(`no Encore api() declares ${route.method} ${route.path}`);
    const item = (doc.paths[route.path.replace(/:(\w+)/g, '{$1}')] ??= {});
    item[route.method.toLowerCase() as 'get' | 'post' | 'patch' | 'delete'] = toOperation(
      route,
      endpoint,
      schemaOf,
      doc.components.schemas,
    );
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
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    version: string;
    description: string;
    license: string;
  };
  const errorResponse = (description: string) => ({
    description,
    headers: ERROR_HEADERS,
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${ERROR_SCHEMA}` } } },
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

function toOperation(
  route: Route,
  endpoint: Endpoint,
  schemaOf: (decl: Declaration) => Schema | undefined,
  components: Record<string, Schema>,
): Operation {
  const request = endpoint.request ? objectSchema(endpoint.request, schemaOf(endpoint.request)) : undefined;
  const fields = { ...request?.properties };
  const required = new Set(request?.required);
  const take = (name: string) => {
    const { description, ...schema } = fields[name] ?? { type: 'string' };
    delete fields[name];
    return { schema, description: typeof description === 'string' ? description : undefined };
  };
  const headerFields = endpoint.request ? headerFieldsOf(endpoint.request) : new Map<string, HeaderField>();
  for (const field of headerFields.values()) delete fields[field.property];

  const parameters: Parameter[] = [];
  for (const [, name] of route.path.matchAll(/:(\w+)/g)) {
    parameters.push({ name, in: 'path', required: true, ...take(name) });
  }
  for (const name of route.headers) {
    const field = [...headerFields.values()].find((f) => f.header === name);
    parameters.push({
      name,
      in: 'header',
      required: field ? !field.optional : false,
      schema: { type: 'string' },
      description: field?.doc ?? headerDoc(name),
    });
  }

  let requestBody: Operation['requestBody'];
  if (route.method === 'GET') {
    for (const name of Object.keys(fields)) parameters.push({ name, in: 'query', required: required.has(name), ...take(name) });
  } else if (Object.keys(fields).length > 0) {
    // The body keeps the request type's name; its header and path fields travel elsewhere.
    const name = endpoint.request!.name.text;
    components[name] = {
      ...request,
      description: `The body of ${route.method} ${route.path}.`,
      properties: fields,
      required: request!.required?.filter((f) => f in fields),
    };
    requestBody = {
      required: request!.required?.some((f) => f in fields) ?? false,
      content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } },
    };
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
      200: success(endpoint, schemaOf),
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

function success(endpoint: Endpoint, schemaOf: (decl: Declaration) => Schema | undefined) {
  if (endpoint.rawContentType) {
    return {
      description: endpoint.doc,
      headers: {
        ...REQUEST_ID_HEADER,
        'Content-Disposition': { description: 'The file name of the document.', required: true, schema: { type: 'string' } },
      },
      content: { [endpoint.rawContentType]: { schema: { type: 'string', contentMediaType: endpoint.rawContentType } } },
    };
  }
  if (!endpoint.response) throw new Error(`${endpoint.service}.${endpoint.name}: the handler must declare Promise<ResponseType>`);
  const name = endpoint.response.name.text;
  const described = schemaOf(endpoint.response)?.description;
  return {
    description: typeof described === 'string' ? described : name,
    headers: REQUEST_ID_HEADER,
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } },
  };
}

function objectSchema(decl: Declaration, schema: Schema | undefined): { properties?: Record<string, Schema>; required?: string[] } {
  if (!schema || schema.type !== 'object') throw new Error(`request type ${decl.name.text} must be a plain object type`);
  return schema as { properties?: Record<string, Schema>; required?: string[] };
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

// ---- reading the Encore declarations ----

/**
 * A program over the API files and what they import from this repository. Package imports
 * (Temporal, pg, ...) are left unresolved: the API types do not use them, and following them
 * would parse over a thousand more files. Encore's `Header` type is the one exception.
 */
function createProgram(root: string, files: string[]): ts.Program {
  const { config, error } = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const { options } = ts.convertCompilerOptionsFromJson(config.compilerOptions, root);
  Object.assign(options, { noEmit: true, types: [] });
  const host = ts.createCompilerHost(options);
  host.resolveModuleNameLiterals = (literals, containingFile, redirectedReference, opts) =>
    literals.map(({ text }) => {
      const own = text.startsWith('.') && !containingFile.includes('/node_modules/');
      if (!own && text !== 'encore.dev/api') return { resolvedModule: undefined };
      return ts.resolveModuleName(text, containingFile, opts, host, undefined, redirectedReference);
    });
  return ts.createProgram(files, options, host);
}

function readEndpoints(source: ts.SourceFile, checker: ts.TypeChecker): Endpoint[] {
  const service = path.basename(path.dirname(source.fileName));
  const endpoints: Endpoint[] = [];
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const decl of statement.declarationList.declarations) {
      const call = decl.initializer;
      const kind = call && ts.isCallExpression(call) ? call.expression.getText(source) : undefined;
      if (!call || !ts.isCallExpression(call) || (kind !== 'api' && kind !== 'api.raw')) continue;
      const [options, handler] = call.arguments;
      const where = `${source.fileName}: ${decl.name.getText(source)}`;
      if (!ts.isObjectLiteralExpression(options)) throw new Error(`${where}: api() options must be a literal`);
      if (!handler || !(ts.isArrowFunction(handler) || ts.isFunctionExpression(handler)))
        throw new Error(`${where}: the handler must be a function`);
      const paramType = handler.parameters[0]?.type;
      const returnType = handler.type;
      const request = kind === 'api' && paramType ? declarationOf(paramType, checker) : undefined;
      const promised = returnType && ts.isTypeReferenceNode(returnType) ? returnType.typeArguments?.[0] : undefined;
      const doc = docOf(decl) ?? (request && docOf(request));
      if (!doc) throw new Error(`${where}: document the endpoint with a JSDoc comment`);
      endpoints.push({
        service,
        name: decl.name.getText(source),
        method: stringProperty(options, 'method') ?? '',
        path: stringProperty(options, 'path') ?? '',
        doc,
        request,
        response: promised ? declarationOf(promised, checker) : undefined,
        rawContentType: kind === 'api.raw' ? contentTypeWritten(handler) : undefined,
      });
    }
  }
  return endpoints;
}

function stringProperty(obj: ts.ObjectLiteralExpression, name: string): string | undefined {
  for (const p of obj.properties) {
    if (ts.isPropertyAssignment(p) && p.name.getText() === name && ts.isStringLiteral(p.initializer)) return p.initializer.text;
  }
  return undefined;
}

/** The interface or type alias a type reference names, following imports. */
function declarationOf(type: ts.TypeNode, checker: ts.TypeChecker): Declaration {
  if (!ts.isTypeReferenceNode(type)) throw new Error(`${type.getText()}: API types must be named types`);
  let symbol = checker.getSymbolAtLocation(type.typeName);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const decl = symbol?.declarations?.find((d) => ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d));
  if (!decl) throw new Error(`${type.getText()}: no interface or type declaration found`);
  return decl as Declaration;
}

function findDeclaration(source: ts.SourceFile, name: string): Declaration {
  const decl = source.statements.find((s) => (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) && s.name.text === name);
  if (!decl) throw new Error(`${source.fileName}: ${name} not found`);
  return decl as Declaration;
}

function docOf(node: ts.Node): string | undefined {
  const jsDoc = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc).at(-1);
  return ts.getTextOfJSDocComment(jsDoc?.comment)?.trim() || undefined;
}

/** The literal content-type a raw handler writes, e.g. `'content-type': 'application/pdf'`. */
function contentTypeWritten(handler: ts.Node): string {
  let found: string | undefined;
  const visit = (node: ts.Node) => {
    if (
      ts.isPropertyAssignment(node) &&
      ts.isStringLiteral(node.initializer) &&
      (ts.isStringLiteral(node.name) || ts.isIdentifier(node.name)) &&
      node.name.text.toLowerCase() === 'content-type'
    ) {
      found ??= node.initializer.text;
    }
    node.forEachChild(visit);
  };
  visit(handler);
  return found ?? 'application/octet-stream';
}

interface HeaderField {
  property: string;
  header: string;
  optional: boolean;
  doc?: string;
}

/** The `Header<'Name'>` fields of a request interface, by property name. */
function headerFieldsOf(decl: Declaration): Map<string, HeaderField> {
  const fields = new Map<string, HeaderField>();
  const members = ts.isInterfaceDeclaration(decl) ? decl.members : ts.isTypeLiteralNode(decl.type) ? decl.type.members : [];
  for (const member of members) {
    if (!ts.isPropertySignature(member)) continue;
    const type = member.type;
    if (!type || !ts.isTypeReferenceNode(type) || type.typeName.getText() !== 'Header') continue;
    const arg = type.typeArguments?.[0];
    if (!arg || !ts.isLiteralTypeNode(arg) || !ts.isStringLiteral(arg.literal)) continue;
    const property = member.name.getText();
    fields.set(property, { property, header: arg.literal.text, optional: member.questionToken !== undefined, doc: docOf(member) });
  }
  return fields;
}

// ---- schemas ----

/** JSON schemas of the given declarations and everything they use, by type name. */
function generateSchemas(program: ts.Program, roots: Declaration[]): Record<string, Schema> {
  const config: CompletedConfig = { ...DEFAULT_CONFIG, skipTypeCheck: true, encodeRefs: false, sortProps: false };
  const generator = new SchemaGenerator(program, createParser(program, config), createFormatter(config), config);
  const { definitions = {} } = generator.createSchemaFromNodes(roots);
  const names = new Map(Object.keys(definitions).map((name) => [name, componentName(name)]));
  if (new Set(names.values()).size !== names.size) throw new Error(`schema names collide: ${[...names.keys()].join(', ')}`);
  return Object.fromEntries(Object.entries(definitions).map(([name, schema]) => [names.get(name)!, rewriteRefs(schema, names) as Schema]));
}

/** OpenAPI component names allow only [A-Za-z0-9._-]; generic instantiations like `Header<"X">` do not. */
const componentName = (name: string) => name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_|_$/g, '');

function rewriteRefs(value: unknown, names: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, names));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/definitions/')) {
        const name = v.slice('#/definitions/'.length);
        return [k, `#/components/schemas/${names.get(name) ?? componentName(name)}`];
      }
      return [k, rewriteRefs(v, names)];
    }),
  );
}

/** Every `$ref` target under `value`. */
export function refsIn(value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => refsIn(v, found));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') found.add(v);
      else refsIn(v, found);
    }
  }
  return found;
}

/** Drops schemas nothing refers to, e.g. Encore's `Header<...>` types once headers are parameters. */
function pruneUnreferenced(doc: OpenApiDocument): void {
  const prefix = '#/components/schemas/';
  const keep = new Set<string>();
  const pending = [...refsIn(doc.paths), ...refsIn(doc.components.responses)];
  for (let ref = pending.pop(); ref !== undefined; ref = pending.pop()) {
    if (!ref.startsWith(prefix) || keep.has(ref)) continue;
    keep.add(ref);
    pending.push(...refsIn(doc.components.schemas[ref.slice(prefix.length)]));
  }
  for (const name of Object.keys(doc.components.schemas)) {
    if (!keep.has(prefix + name)) delete doc.components.schemas[name];
  }
}
