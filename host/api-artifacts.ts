/**
 * What `npm run build` derives from the Encore declarations (scripts/build-api.ts) and the
 * standalone host reads at start: one JSON Schema per endpoint (params, query, body) and the
 * OpenAPI document. Read once per process, as plain JSON: no TypeScript compiler at run time.
 *
 * The build records the sources it read with their SHA-256; a server started on a build made from
 * other sources (a request type edited since) refuses to start, naming the file, rather than
 * validate requests against shapes the code no longer declares.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { appRoot } from '../core/app-root';
import type { Scope } from '../core/auth';

/** A JSON Schema (2020-12, the dialect OpenAPI 3.1 embeds). */
export type Schema = { [keyword: string]: unknown };

/** What a route's request is checked against before its handler runs; each part only where the endpoint has one. */
export interface RouteSchemas {
  params?: Schema;
  querystring?: Schema;
  body?: Schema;
}

/** The request side: every route's schemas, which refer to the shared definitions as `requests#/$defs/<Name>`. */
export interface RequestSchemas {
  $id: typeof REQUEST_DEFS_ID;
  $defs: Record<string, Schema>;
  routes: Record<string, RouteSchemas>;
}

export const REQUEST_DEFS_ID = 'requests';

/** The key of a route in RequestSchemas.routes. */
export const routeKey = (route: { method: string; path: string }) => `${route.method} ${route.path}`;

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
  'x-required-scope': Scope;
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

/** The files a build read, each with the SHA-256 of its content then. */
export interface BuildManifest {
  sources: Record<string, string>;
}

export interface ApiArtifacts {
  requests: RequestSchemas;
  openapi: OpenApiDocument;
}

export const ARTIFACTS_DIR = path.join('dist', 'api');
export const ARTIFACT_FILES = { requests: 'requests.json', openapi: 'openapi.json', manifest: 'manifest.json' } as const;

export class ApiArtifactsError extends Error {}

export const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

/** The first source that differs from what the build read (changed or gone), or null when none does. */
export function changedSource(root: string, manifest: BuildManifest): string | null {
  for (const [file, hash] of Object.entries(manifest.sources)) {
    const full = path.join(root, file);
    if (!existsSync(full) || sha256(readFileSync(full)) !== hash) return file;
  }
  return null;
}

/** The artifacts under `root`, checked against their sources; an ApiArtifactsError says what to run. */
export function readApiArtifacts(root: string): ApiArtifacts {
  const dir = path.join(root, ARTIFACTS_DIR);
  const file = (name: keyof typeof ARTIFACT_FILES) => path.join(dir, ARTIFACT_FILES[name]);
  if (!Object.keys(ARTIFACT_FILES).every((name) => existsSync(file(name as keyof typeof ARTIFACT_FILES)))) {
    throw new ApiArtifactsError(`${ARTIFACTS_DIR} (the request schemas and the OpenAPI document) is missing: run npm run build`);
  }
  const manifest = JSON.parse(readFileSync(file('manifest'), 'utf8')) as BuildManifest;
  const changed = changedSource(root, manifest);
  if (changed) {
    throw new ApiArtifactsError(`${ARTIFACTS_DIR} is out of date (${changed} changed since it was built): run npm run build`);
  }
  return {
    requests: JSON.parse(readFileSync(file('requests'), 'utf8')) as RequestSchemas,
    openapi: JSON.parse(readFileSync(file('openapi'), 'utf8')) as OpenApiDocument,
  };
}

let loaded: ApiArtifacts | undefined;

/** This project's artifacts, read and checked once per process. */
export function apiArtifacts(): ApiArtifacts {
  loaded ??= readApiArtifacts(appRoot());
  return loaded;
}
