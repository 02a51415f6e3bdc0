/**
 * The outbox relay: starts a delivery workflow for every delivery the outbox holds that has none
 * yet, then marks it dispatched. Postgres wakes it at each commit that adds deliveries (LISTEN);
 * it also sweeps every WEBHOOK_RELAY_SWEEP_MS, which covers a lost notification and whatever was
 * left when a process died. Several relays may run (one per worker): rows are claimed with SKIP
 * LOCKED, and a workflow id is started at most once, so a delivery is never dispatched twice.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { PoolClient } from 'pg';
import type { Config } from '../core/config';
import type { Db } from '../core/db';
import type { Logger } from '../core/log';
import { workflowStartOptions } from '../core/temporal';
import { deliveryWorkflowId } from './messages';
import { webhookDeliveryWorkflow } from './workflow';

const BATCH = 100;
const PRUNE_EVERY_MS = 60 * 60 * 1000;

export interface RelayDeps {
  db: Db;
  temporal: Client;
  config: Config;
  log: Logger;
}

export interface Relay {
  /** Dispatches what is waiting now; resolves when nothing is left. */
  dispatch: () => Promise<number>;
  stop: () => Promise<void>;
}

/**
 * Starts the workflows of one batch of waiting deliveries, then marks those dispatched; how many
 * it started. No row is locked while Temporal is called: a workflow id is started at most once, so
 * two relays racing for a row start it once, and a row Temporal refuses stays for the next sweep
 * without holding up the others.
 */
async function dispatchBatch({ db, temporal, config, log }: RelayDeps): Promise<{ waiting: number; started: number }> {
  const { rows } = await db.query<{ delivery_id: string; generation: number; attempts: number }>(
    `SELECT delivery_id, generation, attempts FROM webhook_deliveries
      WHERE status = 'pending' AND dispatched_at IS NULL ORDER BY created_at LIMIT $1`,
    [BATCH],
  );
  const outcomes = await Promise.allSettled(
    rows.map(async (d) => {
      try {
        await temporal.workflow.start(webhookDeliveryWorkflow, {
          workflowId: deliveryWorkflowId(d.delivery_id, d.generation),
          ...workflowStartOptions(config),
          args: [
            {
              delivery_id: d.delivery_id,
              generation: d.generation,
              first_attempt: d.attempts + 1,
              // The HTTP deadline, the second a body may take after it, and the bookkeeping.
              attempt_timeout_ms: config.webhooks.timeoutMs + 5_000,
            },
          ],
          staticSummary: `Webhook delivery ${d.delivery_id}`,
          // Once per id, even after the first run ended: a relay with an older view starts nothing.
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
        });
      } catch (err) {
        // Started by another relay, or by this one before it died unmarked: that workflow delivers it.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
      return d;
    }),
  );
  const started = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  const failed = outcomes.find((o) => o.status === 'rejected');
  if (failed)
    log.warn({ event: 'webhook_relay_failed', err: failed.reason }, 'the webhook relay could not start a delivery; it will retry');
  if (started.length) {
    // This generation only: a manual retry since then is dispatched as its own.
    await db.query(
      `UPDATE webhook_deliveries d SET dispatched_at = now() FROM unnest($1::uuid[], $2::int[]) AS s(delivery_id, generation)
        WHERE d.delivery_id = s.delivery_id AND d.generation = s.generation AND d.dispatched_at IS NULL`,
      [started.map((d) => d.delivery_id), started.map((d) => d.generation)],
    );
  }
  return { waiting: rows.length, started: started.length };
}

/** Events older than the retention, with nothing pending, go with their delivery records. */
export async function pruneEvents(db: Db, retentionDays: number, batch = 1000): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM webhook_events WHERE event_id IN (
       SELECT e.event_id FROM webhook_events e
        WHERE e.created_at < now() - $1 * interval '1 day'
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.event_id AND d.status = 'pending')
        LIMIT $2)`,
    [retentionDays, batch],
  );
  return rowCount ?? 0;
}

export function startWebhookRelay(deps: RelayDeps): Relay {
  const { db, config, log } = deps;
  let stopped = false;
  let running: Promise<number> | null = null;
  let again = false;
  let listener: PoolClient | null = null;

  const dispatch = async (): Promise<number> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      do {
        again = false;
        for (;;) {
          const { waiting, started } = await dispatchBatch(deps);
          total += started;
          // A full batch all started: more may wait. Anything less waits for the next wake-up.
          if (stopped || waiting < BATCH || started < waiting) break;
        }
      } while (again && !stopped);
      return total;
    })().finally(() => {
      running = null;
    });
    return running;
  };

  const kick = () =>
    void dispatch().catch((err: unknown) => {
      // The next notification or sweep tries again; nothing is lost meanwhile.
      log.warn({ event: 'webhook_relay_failed', err }, 'the webhook relay could not dispatch; it will retry');
    });

  const listen = async () => {
    if (stopped) return;
    try {
      const client = await db.connect();
      if (stopped) {
        client.release();
        return;
      }
      listener = client;
      client.on('notification', kick);
      client.on('error', () => {
        client.release(true);
        listener = null;
        setTimeout(() => void listen(), 1000).unref();
      });
      await client.query('LISTEN webhook_deliveries');
      kick(); // what committed while it was not listening
    } catch {
      setTimeout(() => void listen(), 1000).unref();
    }
  };

  void listen();
  const sweep = setInterval(kick, config.webhooks.relaySweepMs);
  const prune = () =>
    void pruneEvents(db, config.webhooks.eventRetentionDays).catch((err: unknown) =>
      log.warn({ event: 'webhook_prune_failed', err }, 'pruning old webhook events failed; it will retry'),
    );
  const pruner = setInterval(prune, PRUNE_EVERY_MS);
  pruner.unref();

  return {
    dispatch,
    stop: async () => {
      stopped = true;
      clearInterval(sweep);
      clearInterval(pruner);
      await running?.catch(() => undefined);
      if (listener) {
        const client = listener;
        listener = null;
        client.removeAllListeners('error');
        await client.query('UNLISTEN *').catch(() => undefined);
        client.release();
      }
    },
  };
}
