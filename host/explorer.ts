/**
 * The API explorer: the generated OpenAPI document at /openapi.json and Swagger UI at /docs,
 * where a person can try every endpoint with an API key and idempotency keys. Both are public.
 */
import path from 'node:path';
import fastifySwagger, { type StaticDocumentSpec } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { OpenApiDocument } from './openapi';
import { routes } from './routes';

const root = path.resolve(__dirname, '..');

// Generating takes a second or two (a TypeScript program), too long for start-up: the first
// request that needs the document generates it, into this one object that every server of the
// process hands out, including @fastify/swagger, which wants its document at boot.
const document = {} as OpenApiDocument;
let generated: Promise<OpenApiDocument> | undefined;

function openApiDocument(): Promise<OpenApiDocument> {
  if (!generated) {
    // Loaded on demand too: the TypeScript compiler alone takes longer to load than the server.
    generated = import('./openapi').then(({ buildOpenApiDocument }) => Object.assign(document, buildOpenApiDocument(routes, root)));
    generated.catch(() => {
      generated = undefined; // the next request tries again; this one answers 500
    });
  }
  return generated;
}

/** Generates the document now rather than on the first request (a one-time pause of the process). */
export function warmUpExplorer(): void {
  void openApiDocument().catch(() => undefined);
}

/** Serves the OpenAPI document at /openapi.json and the interactive explorer at /docs. */
export function registerExplorer(app: FastifyInstance): void {
  app.get('/openapi.json', () => openApiDocument());

  app.register(fastifySwagger, {
    mode: 'static',
    // Typed for OpenAPI 3.0 and earlier; the plugin serves any document as it is.
    specification: { document: document as unknown as StaticDocumentSpec['document'] },
  });
  app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    theme: { title: 'Fees API explorer' },
    uiConfig: { persistAuthorization: true, displayRequestDuration: true },
    uiHooks: {
      // The document is built before the explorer's first page is served.
      onRequest: (_request, _reply, done) => {
        openApiDocument().then(() => done(), done);
      },
    },
  });
}
