/**
 * The standalone HTTP host (Fastify): serves the same endpoints, JSON shapes and Encore error
 * bodies as the Encore layer, for `npm start` and the tests.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Deps } from '../core/deps';
import { AppError, unexpected } from '../core/errors';
import { routes, type RouteRequest } from './routes';

export function buildServer(deps: Deps, opts: { logLevel?: string } = {}): FastifyInstance {
  const app = Fastify({
    logger: { level: opts.logLevel ?? deps.config.logLevel },
    bodyLimit: 1024 * 1024,
  });

  // An empty JSON body means "no body" (curl -X POST .../close), as Encore treats it.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') return done(null, undefined);
    return defaultJson(req, body as string, done);
  });

  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.path,
      handler: async (req, reply) => {
        const result = await route.handle(deps, req as unknown as RouteRequest);
        if (!route.file) return result;
        const file = route.file(result as never);
        return reply.type(file.contentType).header('content-disposition', `inline; filename="${file.filename}"`).send(file.body);
      },
    });
  }

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new AppError('not_found', `no endpoint ${req.method} ${req.url.split('?')[0]}`).toBody());
  });

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    const fastifyClientError = !(err instanceof AppError) && typeof err.statusCode === 'number'
      && err.statusCode >= 400 && err.statusCode < 500;
    // Fastify's own client errors: malformed JSON, unsupported content type, body too large.
    const appError = fastifyClientError
      ? new AppError('invalid_argument', err.message, { reason: (err as FastifyError).code ?? 'bad_request' })
      : unexpected(err);
    if (appError.status >= 500) req.log.error({ err }, 'request failed');
    reply.code(appError.status).send(appError.toBody());
  });

  return app;
}
