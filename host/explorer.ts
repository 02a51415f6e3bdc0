/**
 * The API explorer: the OpenAPI document `npm run build` made (dist/api/openapi.json) at
 * /openapi.json and Swagger UI at /docs, where a person can try every endpoint with an API key
 * and idempotency keys. Both are public.
 */
import fastifySwagger, { type StaticDocumentSpec } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { OpenApiDocument } from './api-artifacts';

/** Serves the OpenAPI document at /openapi.json and the interactive explorer at /docs. */
export function registerExplorer(app: FastifyInstance, document: OpenApiDocument): void {
  app.get('/openapi.json', () => document);

  app.register(fastifySwagger, {
    mode: 'static',
    // Typed for OpenAPI 3.0 and earlier; the plugin serves any document as it is.
    specification: { document: document as unknown as StaticDocumentSpec['document'] },
  });
  app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    theme: { title: 'Fees API explorer' },
    uiConfig: { persistAuthorization: true, displayRequestDuration: true },
  });
}
