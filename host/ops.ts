/**
 * Operational endpoints: /healthz (the process is up), /readyz (its dependencies answer) and
 * /metrics (Prometheus). The API server and the worker's small HTTP server both mount them.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../core/config';
import type { Db } from '../core/db';
import { AppError } from '../core/errors';
import { metricsText } from '../core/metrics';

export type ReadinessCheck = () => Promise<void>;

const CHECK_TIMEOUT_MS = 2_000;

/** `p`, or a rejection naming `what` once `ms` pass (the timer does not hold the process open). */
export function withTimeout<T>(p: Promise<T>, what: string, ms = CHECK_TIMEOUT_MS): Promise<T> {
  return Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms).unref()),
  ]);
}

export const postgresCheck =
  (db: Db): ReadinessCheck =>
  async () => {
    await withTimeout(db.query('SELECT 1'), 'Postgres');
  };

export const temporalCheck =
  (client: Client): ReadinessCheck =>
  async () => {
    await client.connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () => client.workflowService.getSystemInfo({}));
  };

/**
 * Some worker polls the task queue, as Temporal saw it within the last two minutes (a live
 * worker long-polls without pause; Temporal drops pollers it has not seen for a while).
 */
export const workerPollingCheck =
  (client: Client, config: Config): ReadinessCheck =>
  async () => {
    const { pollers } = await client.connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () =>
      client.workflowService.describeTaskQueue({
        namespace: config.temporal.namespace,
        taskQueue: { name: config.temporal.taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      }),
    );
    const recent = (pollers ?? []).filter((p) => {
      const seconds = Number(p.lastAccessTime?.seconds ?? 0);
      return Date.now() / 1000 - seconds < 120;
    });
    if (recent.length === 0) throw new Error(`no worker polls task queue "${config.temporal.taskQueue}"`);
  };

export interface OpsOptions {
  checks: Record<string, ReadinessCheck>;
  /** The Temporal SDK's Prometheus exporter, appended to /metrics. */
  temporalMetricsUrl?: string;
  /** Guards /metrics (and the health endpoints unless they are public). */
  guard: (req: FastifyRequest, scope: 'admin') => Promise<void>;
  healthPublic: boolean;
  metricsPublic: boolean;
}

export function registerOps(app: FastifyInstance, opts: OpsOptions): void {
  const guarded = (isPublic: boolean) => async (req: FastifyRequest) => {
    if (!isPublic) await opts.guard(req, 'admin');
  };

  app.get('/healthz', { preHandler: guarded(opts.healthPublic), logLevel: 'warn' }, async () => ({ status: 'ok' }));

  app.get('/readyz', { preHandler: guarded(opts.healthPublic), logLevel: 'warn' }, async () => {
    const names = Object.keys(opts.checks);
    const results = await Promise.allSettled(names.map((n) => opts.checks[n]()));
    const checks: Record<string, string> = {};
    names.forEach((n, i) => {
      const r = results[i];
      checks[n] = r.status === 'fulfilled' ? 'ok' : String((r.reason as Error)?.message ?? r.reason);
    });
    const failing = names.filter((n) => checks[n] !== 'ok');
    if (failing.length > 0) throw new AppError('unavailable', `not ready: ${failing.join(', ')}`, { checks });
    return { status: 'ready', checks };
  });

  app.get('/metrics', { preHandler: guarded(opts.metricsPublic), logLevel: 'warn' }, async (_req, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return metricsText(opts.temporalMetricsUrl);
  });
}
