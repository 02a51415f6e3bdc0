/**
 * The process's Prometheus metrics (prom-client). Counters live here so that any module can
 * count without knowing who exposes them; the HTTP hosts serve the registry at /metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queryable } from './db';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'fees_' });

export const httpDuration = new Histogram({
  name: 'fees_http_request_duration_seconds',
  help: 'HTTP requests by route template, method and status',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

export const lineItems = new Counter({
  name: 'fees_line_items_total',
  help: 'Line item requests: accepted, or rejected with the reason (error code, and field when there is one)',
  labelNames: ['result', 'reason'] as const,
  registers: [registry],
});

export const billsOpened = new Counter({
  name: 'fees_bills_opened_total',
  help: 'Bills created (counted by the worker that stored them)',
  registers: [registry],
});

export const billsClosed = new Counter({
  name: 'fees_bills_closed_total',
  help: 'Bills closed (counted by the worker that closed them)',
  registers: [registry],
});

export const idempotentReplays = new Counter({
  name: 'fees_idempotent_replays_total',
  help: 'Requests answered from the idempotency store instead of being run again',
  registers: [registry],
});

export const totalsFallbacks = new Counter({
  name: 'fees_totals_fallbacks_total',
  help: 'Open bills shown with stored totals because their workflow did not answer the query in time',
  registers: [registry],
});

export const closeTotalsMismatches = new Counter({
  name: 'fees_close_totals_mismatches_total',
  help: 'Bills whose workflow counted other totals than their stored line items when they closed (a bug: alert on any)',
  registers: [registry],
});

export const invoiceFailures = new Counter({
  name: 'fees_invoice_failures_total',
  help: 'Invoice post-processes that ended failed after their retries, by step (generate or deliver)',
  labelNames: ['step'] as const,
  registers: [registry],
});

export const webhookDeliveries = new Counter({
  name: 'fees_webhook_deliveries_total',
  help: 'Webhook delivery attempts by result: success (2xx), http_error (another status), timeout, refused (a non-public address), network',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const webhookAttemptDuration = new Histogram({
  name: 'fees_webhook_attempt_duration_seconds',
  help: 'Webhook delivery attempts: time until the receiver answered (or the attempt failed), by result',
  labelNames: ['result'] as const,
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

export const webhookDeliveryLatency = new Histogram({
  name: 'fees_webhook_delivery_latency_seconds',
  help: 'Webhook deliveries that succeeded: time from the event to its successful attempt, retries included',
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400],
  registers: [registry],
});

/** The open-bill gauge reads Postgres at scrape time, so it is right whichever process scrapes. */
export function registerOpenBillsGauge(db: Queryable): void {
  registry.removeSingleMetric('fees_open_bills');
  new Gauge({
    name: 'fees_open_bills',
    help: 'Bills currently open',
    registers: [registry],
    async collect() {
      const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM bills WHERE status = 'open'`);
      this.set(Number(rows[0].n));
    },
  });
}

/**
 * Our metrics in Prometheus text format, followed by the Temporal SDK's (its runtime exports them
 * on its own address; one scrape of /metrics gets both).
 */
export async function metricsText(temporalMetricsUrl: string | undefined): Promise<string> {
  const ours = await registry.metrics();
  if (!temporalMetricsUrl) return ours;
  try {
    const res = await fetch(temporalMetricsUrl, { signal: AbortSignal.timeout(2_000) });
    return `${ours}\n${await res.text()}`;
  } catch {
    return `${ours}\n# Temporal SDK metrics unavailable at ${temporalMetricsUrl}\n`;
  }
}
