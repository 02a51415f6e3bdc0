/**
 * The OpenAPI document is built (npm run build) from the route table and the Encore declarations.
 * These checks hold it to what the host serves: every route, its parameters where the host reads
 * them, its scope, and a well-formed 3.1 document whose references all resolve.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HTTP_STATUS } from '../../core/errors';
import { IDEMPOTENCY_HEADERS } from '../../core/idempotency';
import type { OpenApiDocument, Operation, Schema } from '../../host/api-artifacts';
import { routes, type Route } from '../../host/routes';
import { refsIn } from '../../scripts/api/declarations';
import { buildApi, ensureApi } from '../../scripts/build-api';

const root = path.resolve(__dirname, '..', '..');
let doc: OpenApiDocument;

beforeAll(() => {
  // The document the server serves: dist/api/openapi.json, built first if missing or out of date.
  doc = ensureApi(root).openapi;
}, 60_000);

const openApiPath = (route: Pick<Route, 'path'>) => route.path.replace(/:(\w+)/g, '{$1}');
const operationOf = (method: Route['method'], routePath: string): Operation | undefined =>
  doc.paths[openApiPath({ path: routePath })]?.[method.toLowerCase() as 'get' | 'post'];
const paramsIn = (op: Operation | undefined, where: string) => (op?.parameters ?? []).filter((p) => p.in === where).map((p) => p.name);

/** The schema a `$ref` points at, e.g. `#/components/schemas/Bill`. */
function resolve(ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
}
const bodySchema = (op: Operation | undefined) =>
  resolve(String(op?.requestBody?.content['application/json'].schema.$ref)) as Schema & {
    properties: Record<string, Schema>;
    required?: string[];
  };

describe('the generated OpenAPI document', () => {
  it('is an OpenAPI 3.1.0 document with bearer auth and the Encore error body as shared components', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas.ErrorBody).toMatchObject({
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: { code: { $ref: '#/components/schemas/ErrCode' }, message: { type: 'string' } },
    });
    expect((doc.components.schemas.ErrCode.enum as string[]).sort()).toEqual(Object.keys(HTTP_STATUS).sort());
    for (const name of ['ClientError', 'ServerError']) {
      expect(doc.components.responses[name]).toMatchObject({
        content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } },
      });
    }
  });

  it('documents every route of the host, and nothing else', () => {
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(routes.map((r) => `${r.method} ${openApiPath(r)}`).sort());
  });

  it.each(routes.map((r) => [`${r.method} ${r.path}`, r] as const))('documents %s as the host serves it', (_, route) => {
    const op = operationOf(route.method, route.path);
    expect(op).toBeDefined();
    expect(op!.summary).toEqual(expect.stringMatching(/\w/));
    expect(paramsIn(op, 'path')).toEqual([...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]));
    expect(op!.parameters.filter((p) => p.in === 'path').every((p) => p.required)).toBe(true);
    expect(paramsIn(op, 'header').sort()).toEqual([...route.headers].sort());
    expect(op!.security).toEqual([{ bearerAuth: [] }]);
    expect(op!['x-required-scope']).toBe(route.scope);
    expect(op!.description).toContain(route.scope);
    expect(op!.responses).toMatchObject({
      200: expect.anything(),
      '4XX': { $ref: '#/components/responses/ClientError' },
      '5XX': { $ref: '#/components/responses/ServerError' },
    });
  });

  it('gives every POST the idempotency headers as optional header parameters', () => {
    const posts = routes.filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThanOrEqual(4);
    for (const route of posts) {
      const headers = operationOf(route.method, route.path)!.parameters.filter((p) => p.in === 'header');
      expect(headers.map((h) => h.name).sort()).toEqual([...IDEMPOTENCY_HEADERS].sort());
      expect(headers.every((h) => !h.required && h.schema.type === 'string' && h.description)).toBe(true);
    }
  });

  it('keeps headers and path parameters out of bodies and query strings', () => {
    const create = bodySchema(operationOf('POST', '/bills'));
    expect(Object.keys(create.properties)).toEqual(expect.arrayContaining(['billing_period_end', 'bill_id', 'currency']));
    // Required for usage-based bills only, so optional in the schema (the handler checks it).
    expect(create.required ?? []).toEqual([]);
    expect(Object.keys(create.properties)).toEqual(expect.arrayContaining(['policy', 'interval', 'billing_anchor_day', 'recurring_fee']));
    expect(create.properties.billing_period_end.description).toMatch(/RFC 3339/);

    const addItem = operationOf('POST', '/bills/:billId/line-items');
    expect(addItem!.requestBody!.required).toBe(true);
    expect(Object.keys(bodySchema(addItem).properties).sort()).toEqual(['amount', 'currency', 'description', 'metadata', 'tax_rates']);

    expect(paramsIn(operationOf('GET', '/bills'), 'query')).toEqual(['status', 'invoice_status', 'series_id', 'limit', 'cursor', 'totals']);
    expect(paramsIn(operationOf('GET', '/bills/:billId/line-items'), 'query')).toEqual(['limit', 'cursor']);
    // Requests with only a path parameter and headers have no body at all.
    expect(operationOf('POST', '/bills/:billId/close')!.requestBody).toBeUndefined();

    const bodies = Object.values(doc.paths)
      .flatMap((item) => Object.values(item))
      .flatMap((op) => (op.requestBody ? [bodySchema(op)] : []));
    for (const body of bodies) {
      expect(Object.keys(body.properties)).not.toContain('billId');
      expect(Object.keys(body.properties).filter((k) => /idempotency/i.test(k))).toEqual([]);
    }
  });

  it("describes each answer with the handler's response type, and the invoice as a PDF", () => {
    expect(operationOf('GET', '/bills/:billId')!.responses[200]).toMatchObject({
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Bill' } } },
    });
    expect(resolve('#/components/schemas/Bill')).toMatchObject({ properties: { status: { $ref: '#/components/schemas/BillStatus' } } });
    expect(operationOf('GET', '/bills/:billId/line-items')!.responses[200]).toMatchObject({
      content: { 'application/json': { schema: { $ref: '#/components/schemas/LineItemPage' } } },
    });
    const invoice = operationOf('GET', '/bills/:billId/invoice')!.responses[200] as { content: Record<string, unknown> };
    expect(Object.keys(invoice.content)).toEqual(['application/pdf', 'application/xml']);
  });

  it('uses valid component names, and every reference resolves', () => {
    for (const section of Object.values(doc.components)) {
      for (const name of Object.keys(section)) expect(name).toMatch(/^[A-Za-z0-9._-]+$/);
    }
    const refs = [...refsIn(doc)];
    expect(refs.length).toBeGreaterThan(10);
    expect(refs.filter((ref) => resolve(ref) === undefined)).toEqual([]);
    expect(JSON.stringify(doc)).not.toContain('#/definitions/');
  });

  it('refuses a route that no Encore api() declares', () => {
    const stray: Route = { ...routes[0], path: '/bills/:billId/nowhere' };
    expect(() => buildApi(root, [...routes, stray])).toThrow('no Encore api() declares POST /bills/:billId/nowhere');
  }, 60_000);
});

describe('the contract as a third party reads it', () => {
  it("passes Redocly's recommended rules with no error and no warning", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'openapi-lint-'));
    try {
      const file = path.join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(doc));
      const result = spawnSync(path.join(root, 'node_modules', '.bin', 'redocly'), ['lint', file, '--format=json'], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      });
      const report = JSON.parse(result.stdout) as {
        totals: { errors: number; warnings: number };
        problems: { ruleId: string; message: string }[];
      };
      expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
      expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
