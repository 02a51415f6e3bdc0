/**
 * The standalone HTTP host (Fastify): serves the same endpoints, JSON shapes and Encore error
 * bodies as the Encore layer, for `npm start` and the tests, plus the operational endpoints.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Authenticator, type Principal, type Scope } from '../core/auth';
import type { Config } from '../core/config';
import type { Deps } from '../core/deps';
import { AppError, unexpected } from '../core/errors';
import { REDACT_PATHS, type DestinationStream } from '../core/log';
import { httpDuration, registerOpenBillsGauge } from '../core/metrics';
import { apiArtifacts, routeKey } from './api-artifacts';
import { registerExplorer } from './explorer';
import { registerCodec } from './codec';
import { postgresCheck, registerOps, temporalCheck, workerPollingCheck, type ReadinessCheck } from './ops';
import { requestValidatorCompiler } from './request-validation';
import { routes, type RouteRequest } from './routes';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A body over the limit (413) and one of a type the API does not take (415) answer as HTTP says. */
const TRANSPORT_STATUS = new Set([413, 415]);
const BILL_PATH = /^\/bills\/([^/?]+)/;

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * A Fastify instance with what every server of ours shares: JSON logs with a request id on every
 * line (a caller's X-Request-Id is kept), Encore error bodies, and request duration metrics.
 */
/**
 * A request Node's HTTP parser refuses (malformed framing, headers too large, too slow) never
 * reaches routing; it still gets the Encore error body, then the connection closes.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // A request on this connection is still being answered (the bytes that fail to parse came after
  // it: a body sent without a length, say). Ours would come first, and the client would take a 400
  // for a request that is being carried out: close instead, so the client sees no answer and
  // retries with its idempotency key. (Writing into a response under way, or after one that said
  // `Connection: close`, would garble it, too.)
  // A request whose own body stalls is the one that times out: nothing of its answer is written
  // yet, so its 408 is the answer.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  const stalled = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && inFlight?.headersSent === false;
  if (inFlight && !stalled) {
    socket.destroy(err);
    return;
  }
  const [status, error] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, new AppError('deadline_exceeded', 'the request was not received in time')]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, new AppError('invalid_argument', 'the request headers are too large', { reason: err.code })]
        : [400, new AppError('invalid_argument', 'malformed HTTP request', { reason: err.code ?? 'bad_request' })];
  const body = JSON.stringify(error.toBody());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

export function createApp(
  config: Config,
  component: string,
  opts: { logLevel?: string; logStream?: DestinationStream } = {},
): FastifyInstance {
  const app = Fastify({
    logger: {
      level: opts.logLevel ?? config.logLevel,
      redact: REDACT_PATHS,
      base: { service: 'fees-api', component },
      ...(opts.logStream ? { stream: opts.logStream } : {}),
    },
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    // Every line of a request about one bill names it, from "incoming request" on.
    childLoggerFactory: (logger, bindings, options, rawReq) => {
      const billId = BILL_PATH.exec(rawReq.url ?? '')?.[1];
      return logger.child(billId ? { ...bindings, bill_id: safeDecode(billId) } : bindings, options);
    },
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: 1024 * 1024,
    // A client that stops sending (a Content-Length it never fills) gets 408 and its connection
    // closed, instead of holding it, and a shutdown waiting on it, for as long as it likes. Node
    // checks these every connectionsCheckingInterval.
    http: { headersTimeout: config.http.headersTimeoutMs, connectionsCheckingInterval: 1_000 },
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    // Off by default: then req.ip is the peer, and an X-Forwarded-For the caller wrote means nothing.
    trustProxy:
      typeof config.trustProxy === 'number'
        ? (
            (hops: number) => (_address: string, hop: number) =>
              hop < hops
          )(config.trustProxy)
        : config.trustProxy,
    // Fastify's own answers for these two cases are not in the Encore error shape: ours are below.
    return503OnClosing: false,
    clientErrorHandler: answerClientError,
    // URLs the router refuses before routing (a bad percent-encoding, a path parameter over 100
    // characters) get the Encore error body too, without echoing the URL back.
    frameworkErrors: (err, _req, reply) => {
      const message = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is too long' : 'the URL is malformed';
      void (reply as FastifyReply)
        .code(err.statusCode ?? 400)
        .send(new AppError('invalid_argument', message, { reason: err.code }).toBody());
    },
  });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    // SIGTERM: requests arriving while in-flight ones finish get a 503 the client can retry.
    if (closing) {
      return reply.code(503).send(new AppError('unavailable', 'the server is shutting down; retry').toBody());
    }
  });
  // While closing, an answered request must not leave its keep-alive connection open: the
  // server would otherwise wait for the keep-alive timeout before it can finish closing.
  app.addHook('onSend', async (_req, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (req, reply) => {
    httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new AppError('not_found', `no endpoint ${req.method} ${req.url.split('?')[0]}`).toBody());
  });

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    const fastifyClientError =
      !(err instanceof AppError) && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500;
    // Fastify's own client errors: malformed JSON, unsupported content type, body too large.
    const appError = fastifyClientError
      ? new AppError('invalid_argument', err.message, { reason: (err as FastifyError).code ?? 'bad_request' })
      : unexpected(err);
    if (appError.status >= 500) req.log.error({ err }, 'request failed');
    const retryAfter = appError.details?.retry_after_seconds;
    if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
    // Encore's codes have no 413 or 415: the body says invalid_argument, the status what HTTP says.
    const status = fastifyClientError && TRANSPORT_STATUS.has(err.statusCode!) ? err.statusCode! : appError.status;
    reply.code(status).send(appError.toBody());
  });
  return app;
}

/**
 * Closes the server: no new connections, in-flight requests answered, within `ms`; then the
 * connections still open (a client that never finishes its request) are cut, so a shutdown is bounded.
 */
export async function closeWithin(app: FastifyInstance, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  const closing = app.close();
  if ((await Promise.race([closing, late])) === 'late') {
    app.log.warn({ event: 'shutdown_timeout', after_ms: ms }, 'requests still open at the shutdown deadline: closing their connections');
    app.server.closeAllConnections();
    await closing;
  }
  clearTimeout(timer);
}

/** Checks an API key for `scope`; the caller is then on `req.principal`. */
export function guardWith(authenticator: Authenticator) {
  return async (req: FastifyRequest, scope: Scope) => {
    const header = req.headers.authorization;
    req.principal = await authenticator.authenticate(Array.isArray(header) ? header[0] : header, req.ip, scope);
  };
}

export interface ServerOptions {
  logLevel?: string;
  /** Where request logs go (stdout by default); tests read them. */
  logStream?: DestinationStream;
  /** Readiness checks; by default Postgres, Temporal, and a worker polling the task queue. */
  checks?: Record<string, ReadinessCheck>;
  temporalMetricsUrl?: string;
}

export function buildServer(deps: Deps, opts: ServerOptions = {}): FastifyInstance {
  const { config } = deps;
  // The request schemas and the OpenAPI document `npm run build` made: a missing or stale build stops start-up here.
  const artifacts = apiArtifacts();
  const app = createApp(config, 'api', opts);
  const guard = guardWith(new Authenticator(deps.db, config.auth));

  // An empty JSON body means "no body" (curl -X POST .../close), as Encore treats it.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') return done(null, undefined);
    return defaultJson(req, body as string, done);
  });
  // Every endpoint takes JSON: a text/plain body (which Fastify would parse as a string) gets 415.
  app.removeContentTypeParser('text/plain');

  registerExplorer(app, artifacts.openapi);
  app.setValidatorCompiler(requestValidatorCompiler(artifacts.requests));
  registerOpenBillsGauge(deps.db);
  registerOps(app, {
    checks: opts.checks ?? {
      postgres: postgresCheck(deps.db),
      temporal: temporalCheck(deps.temporal),
      worker: workerPollingCheck(deps.temporal, config),
    },
    temporalMetricsUrl: opts.temporalMetricsUrl,
    guard,
    healthPublic: config.auth.healthPublic,
    metricsPublic: config.auth.metricsPublic,
  });

  registerCodec(app, config, { guard });

  for (const route of routes) {
    const { refused } = route;
    app.route({
      method: route.method,
      url: route.path,
      // Who is calling comes first, then the shape of what they sent (Fastify validates after preValidation).
      preValidation: (req) => guard(req, route.scope),
      // A fresh object per server (Fastify marks it), holding the one schema object per part the compiler caches by.
      schema: { ...artifacts.requests.routes[routeKey(route)] },
      ...(refused
        ? {
            onError: async (_req: FastifyRequest, _reply: FastifyReply, err: FastifyError) => {
              if (err.validationContext && err instanceof AppError) refused(err);
            },
          }
        : {}),
      handler: async (req, reply) => {
        const result = await route.handle(deps, req as unknown as RouteRequest);
        if (!route.file) return result;
        const file = route.file(result as never);
        return reply.type(file.contentType).header('content-disposition', `inline; filename="${file.filename}"`).send(file.body);
      },
    });
  }
  return app;
}
