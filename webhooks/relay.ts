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
import { inTransaction, type Db } from '../core/db';
import type { Logger } from '../core/log';
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

/** Starts the workflows of one batch of waiting deliveries; how many there were. */
async function dispatchBatch({ db, temporal, config }: RelayDeps): Promise<number> {
  return inTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ delivery_id: string; generation: number; attempts: number }>(
      `SELECT delivery_id, generation, attempts FROM webhook_deliveries
        WHERE status = 'pending' AND dispatched_at IS NULL ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [BATCH],
    );
    await Promise.all(
      rows.map(async (d) => {
        try {
          await temporal.workflow.start(webhookDeliveryWorkflow, {
            workflowId: deliveryWorkflowId(d.delivery_id, d.generation),
            taskQueue: config.temporal.taskQueue,
            args: [{ delivery_id: d.delivery_id, first_attempt: d.attempts + 1, attempt_timeout_ms: config.webhooks.timeoutMs + 10_000 }],
            staticSummary: `Webhook delivery ${d.delivery_id}`,
          });
        } catch (err) {
          // Started by an earlier relay that died before marking it: that workflow delivers it.
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
      }),
    );
    if (rows.length) {
      await tx.query('UPDATE webhook_deliveries SET dispatched_at = now() WHERE delivery_id = ANY($1)', [rows.map((r) => r.delivery_id)]);
    }
    return rows.length;
  });
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
        for (let n = BATCH; n === BATCH && !stopped; total += n) n = await dispatchBatch(deps);
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
