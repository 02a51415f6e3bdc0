/**
 * Builds what the standalone host serves and validates with, from the Encore declarations, into
 * dist/api (git-ignored): `npm run build` runs it (and so `npm install`, `npm ci`, `npm test`).
 *
 *   requests.json   one JSON Schema per route: params, querystring, body
 *   openapi.json    the OpenAPI document served at /openapi.json and /docs
 *   manifest.json   the sources read, with their SHA-256: the host refuses a build of other sources
 *
 *   tsx scripts/build-api.ts [--if-stale]    (--if-stale: only when missing or out of date)
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  ApiArtifactsError,
  ARTIFACT_FILES,
  ARTIFACTS_DIR,
  readApiArtifacts,
  REQUEST_DEFS_ID,
  routeKey,
  sha256,
  type ApiArtifacts,
  type BuildManifest,
  type RequestSchemas,
  type Schema,
} from '../host/api-artifacts';
import { routes as serverRoutes, type Route } from '../host/routes';
import { generateSchemas, readDeclarations, refsIn, withRefPrefix, type Declaration } from './api/declarations';
import { endpointRequest, validationSchemas } from './api/endpoint-schemas';
import { buildDocument } from './api/openapi';

/** Besides the declarations: what else decides the output. */
const ALSO_READ = [
  'package.json',
  'host/routes.ts',
  'host/api-artifacts.ts',
  'core/idempotency.ts',
  'scripts/build-api.ts',
  'scripts/api/declarations.ts',
  'scripts/api/encore-validate.ts',
  'scripts/api/endpoint-schemas.ts',
  'scripts/api/openapi.ts',
];

export interface BuiltApi extends ApiArtifacts {
  manifest: BuildManifest;
}

export function buildApi(root: string, routes: readonly Route[] = serverRoutes): BuiltApi {
  const decls = readDeclarations(root);
  const pairs = routes.map((route) => {
    const endpoint = decls.endpoints.find((e) => e.method === route.method && e.path === route.path);
    if (!endpoint) throw new Error(`no Encore api() declares ${route.method} ${route.path}`);
    return { route, endpoint };
  });
  const requestTypes = unique(pairs.flatMap(({ endpoint }) => (endpoint.request ? [endpoint.request] : [])));
  const responseTypes = unique([decls.errorBody, ...pairs.flatMap(({ endpoint }) => (endpoint.response ? [endpoint.response] : []))]);
  const requestDefs = generateSchemas(decls, requestTypes, 'request');
  const responseDefs = generateSchemas(decls, responseTypes, 'response');

  const endpoints = pairs.map((p) => ({ ...p, request: endpointRequest(p.route, p.endpoint, requestDefs, decls) }));
  const routeSchemas = Object.fromEntries(
    endpoints.map(({ route, endpoint, request }) => [routeKey(route), validationSchemas(endpoint, request)]),
  );
  const prefix = `${REQUEST_DEFS_ID}#/$defs/`;
  const requests: RequestSchemas = {
    $id: REQUEST_DEFS_ID,
    $defs: withRefPrefix(reachable(routeSchemas, requestDefs), prefix),
    routes: withRefPrefix(routeSchemas, prefix),
  };
  const openapi = buildDocument({ root, routes, endpoints, schemas: merged(requestDefs, responseDefs) });

  const files = [...[...decls.sources].map((f) => path.relative(root, f)), ...ALSO_READ].sort();
  const manifest: BuildManifest = {
    sources: Object.fromEntries([...new Set(files)].map((f) => [f, sha256(readFileSync(path.join(root, f)))])),
  };
  return { requests, openapi, manifest };
}

const unique = (decls: Declaration[]) => [...new Set(decls)];

/** The named schemas the route schemas refer to, and what those refer to. */
function reachable(routeSchemas: unknown, defs: Record<string, Schema>): Record<string, Schema> {
  const found: Record<string, Schema> = {};
  const pending = [...refsIn(routeSchemas)];
  for (let ref = pending.pop(); ref !== undefined; ref = pending.pop()) {
    const name = ref.replace(/^#\/\$defs\//, '');
    if (name in found) continue;
    if (!(name in defs)) throw new Error(`a request schema refers to ${ref}, which was not generated`);
    found[name] = defs[name];
    pending.push(...refsIn(defs[name]));
  }
  return found;
}

/**
 * Request and response schemas in one namespace. A type on both sides must come out the same: a
 * request type of its own is needed where they differ (request types allow unknown fields, response
 * types do not).
 */
function merged(requestDefs: Record<string, Schema>, responseDefs: Record<string, Schema>): Record<string, Schema> {
  for (const [name, schema] of Object.entries(requestDefs)) {
    if (name in responseDefs && JSON.stringify(responseDefs[name]) !== JSON.stringify(schema)) {
      throw new Error(`${name} is both a request and a response type, with different schemas: give the request its own type`);
    }
  }
  return { ...requestDefs, ...responseDefs };
}

/** Writes each file whole (a reader never sees half of one), the manifest last. */
export function writeApi(root: string, built: BuiltApi): void {
  const dir = path.join(root, ARTIFACTS_DIR);
  mkdirSync(dir, { recursive: true });
  const write = (name: keyof typeof ARTIFACT_FILES, value: unknown) => {
    const file = path.join(dir, ARTIFACT_FILES[name]);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
    renameSync(tmp, file);
  };
  write('requests', built.requests);
  write('openapi', built.openapi);
  write('manifest', built.manifest);
}

/** The artifacts, built first when missing or out of date (for the tests and `--if-stale`). */
export function ensureApi(root: string): ApiArtifacts {
  try {
    return readApiArtifacts(root);
  } catch (err) {
    if (!(err instanceof ApiArtifactsError)) throw err;
    const built = buildApi(root);
    writeApi(root, built);
    return built;
  }
}

if (require.main === module) {
  const root = path.resolve(__dirname, '..');
  const started = Date.now();
  if (process.argv.includes('--if-stale')) {
    try {
      readApiArtifacts(root);
      process.exit(0);
    } catch (err) {
      if (!(err instanceof ApiArtifactsError)) throw err;
      console.log(err.message.replace(/: run npm run build$/, ': building it'));
    }
  }
  const built = buildApi(root);
  writeApi(root, built);
  console.log(
    `${ARTIFACTS_DIR}: request schemas of ${Object.keys(built.requests.routes).length} routes and the OpenAPI document ` +
      `from ${Object.keys(built.manifest.sources).length} sources (${Date.now() - started} ms)`,
  );
}
