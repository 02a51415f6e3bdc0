/**
 * The process's Prometheus metrics (prom-client). Counters live here so that any module can
 * count without knowing who exposes them; the HTTP host serves the registry.
 */
import { Counter, Registry } from 'prom-client';

export const registry = new Registry();

export const invoiceFailures = new Counter({
  name: 'fees_invoice_failures_total',
  help: 'Invoice post-processes that ended failed after their retries, by step (generate or deliver)',
  labelNames: ['step'] as const,
  registers: [registry],
});
