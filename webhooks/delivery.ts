/**
 * One attempt of one delivery, safe to run again: the attempt is claimed in Postgres first (by
 * its number and the delivery's generation), so a retried activity or a second workflow for the
 * same delivery finds it claimed and does not send it again; the outcome and the next attempt's
 * time are recorded after. Backoff is exponential with jitter, so receivers coming back from an
 * outage are not hit by every retry at once. An endpoint that has only failed for
 * WEBHOOK_DISABLE_AFTER_MS is disabled, with the reason.
 */
import { Webhook as Signer } from 'standardwebhooks';
import type { Config } from '../core/config';
import { inTransaction, type Db } from '../core/db';
import type { Logger } from '../core/log';
import { webhookAttemptDuration, webhookDeliveries, webhookDeliveryLatency } from '../core/metrics';
import type { SecretBox } from './secrets';
import { send, type SendResult } from './sender';
import { cancelPending } from './store';
import type { DeliveryStatus } from './types';

export interface AttemptInput {
  delivery_id: string;
  /** Which run of the delivery this is: a manual retry starts the next generation. */
  generation: number;
  /** The attempt's number: 1 for the first of the delivery's life. */
  attempt: number;
}

export type AttemptResult =
  { done: true; status: DeliveryStatus; attempts: number } | { done: false; next_attempt: number; retry_in_ms: number };

export interface DeliveryDeps {
  db: Db;
  config: Config;
  secrets: SecretBox;
  log: Logger;
}

interface Claimed {
  webhook_id: string;
  url: string;
  secret_ciphertext: string;
  previous_secret_ciphertext: string | null;
  event_id: string;
  event_type: string;
  event_created_at: Date;
  payload: string;
  retrying_since: Date;
}

/** Base delay doubling per attempt up to the maximum, then a random point in its upper half. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(base / 2 + random() * (base / 2));
}

/** Standard Webhooks headers, signed with every secret that is valid now (both during a rotation). */
export function signedHeaders(secrets: string[], eventId: string, payload: string, at: Date): Record<string, string> {
  const signatures = secrets.map((s) => new Signer(s).sign(eventId, at, payload));
  return {
    'webhook-id': eventId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
    'user-agent': 'fees-api-webhooks/1',
  };
}

async function claim(db: Db, input: AttemptInput): Promise<Claimed | null> {
  const { rows } = await db.query<Claimed>(
    `UPDATE webhook_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now()
       FROM webhook_endpoints w, webhook_events e
      WHERE d.delivery_id = $1 AND d.generation = $2 AND d.status = 'pending' AND d.attempts = $3 - 1
        AND w.webhook_id = d.webhook_id AND w.enabled AND e.event_id = d.event_id
     RETURNING d.webhook_id, w.url, w.secret_ciphertext,
       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret_ciphertext END AS previous_secret_ciphertext,
       e.event_id, e.type AS event_type, e.created_at AS event_created_at, e.payload::text AS payload, d.retrying_since`,
    [input.delivery_id, input.generation, input.attempt],
  );
  return rows[0] ?? null;
}

/** Not claimable: where the delivery stands, for the workflow to stop or go on from there. */
async function standing(deps: DeliveryDeps, input: AttemptInput): Promise<AttemptResult> {
  const { rows } = await deps.db.query<{
    status: DeliveryStatus;
    generation: number;
    attempts: number;
    settled_attempts: number;
    next_attempt_at: Date | null;
    last_attempt_at: Date | null;
    enabled: boolean;
  }>(
    `SELECT d.status, d.generation, d.attempts, d.settled_attempts, d.next_attempt_at, d.last_attempt_at, w.enabled
       FROM webhook_deliveries d JOIN webhook_endpoints w USING (webhook_id) WHERE d.delivery_id = $1`,
    [input.delivery_id],
  );
  const row = rows[0];
  // Deleted with its endpoint.
  if (!row) return { done: true, status: 'cancelled', attempts: 0 };
  // A manual retry started a newer generation: its own workflow delivers it.
  if (row.generation !== input.generation) return { done: true, status: row.status, attempts: row.attempts };
  if (row.status !== 'pending') return { done: true, status: row.status, attempts: row.attempts };
  if (!row.enabled) {
    await deps.db.query(
      `UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL, last_error = 'the endpoint is disabled'
       WHERE delivery_id = $1 AND status = 'pending'`,
      [input.delivery_id],
    );
    return { done: true, status: 'cancelled', attempts: row.attempts };
  }
  const now = Date.now();
  // This attempt was claimed already (this activity's earlier try, or another run): go on after
  // it. While its outcome is not recorded it may still be under way: the next one waits until it
  // must have ended, so two attempts never overlap.
  const inFlightUntil =
    row.attempts > row.settled_attempts && row.last_attempt_at ? row.last_attempt_at.getTime() + deps.config.webhooks.timeoutMs + 5_000 : 0;
  const wait = Math.max(0, (row.next_attempt_at?.getTime() ?? 0) - now, inFlightUntil - now);
  return { done: false, next_attempt: row.attempts + 1, retry_in_ms: wait };
}

function resultLabel(r: SendResult): string {
  if (r.status !== null) return r.status >= 200 && r.status < 300 ? 'success' : 'http_error';
  return r.failure ?? 'network';
}

async function sendClaimed(deps: DeliveryDeps, claimed: Claimed): Promise<SendResult> {
  const settings = deps.config.webhooks;
  try {
    const sealed = [claimed.secret_ciphertext, claimed.previous_secret_ciphertext].filter((s) => s !== null);
    return await send({
      url: claimed.url,
      headers: signedHeaders(
        sealed.map((s) => deps.secrets.open(s)),
        claimed.event_id,
        claimed.payload,
        new Date(),
      ),
      body: claimed.payload,
      timeoutMs: settings.timeoutMs,
      bodyLimit: settings.responseBodyLimit,
      allowPrivate: settings.allowPrivate,
    });
  } catch (err) {
    // The secret cannot be opened (WEBHOOK_SECRETS_KEY changed): a failed attempt like any other,
    // visible on the delivery, instead of an activity failing forever.
    return { status: null, body: null, error: (err as Error).message, failure: 'network', durationMs: 0 };
  }
}

export async function attemptDelivery(deps: DeliveryDeps, input: AttemptInput): Promise<AttemptResult> {
  const { db, config, log } = deps;
  const settings = config.webhooks;
  const claimed = await claim(db, input);
  if (!claimed) return standing(deps, input);

  const sent = await sendClaimed(deps, claimed);
  const label = resultLabel(sent);
  webhookDeliveries.inc({ result: label });
  webhookAttemptDuration.observe({ result: label }, sent.durationMs / 1000);
  const error = label === 'success' ? null : (sent.error ?? `the receiver answered HTTP ${sent.status}`);
  // Only the claimed attempt's own row version: a delivery cancelled, deleted or restarted
  // meanwhile keeps what happened to it.
  const thisAttempt = `delivery_id = $1 AND generation = $2 AND attempts = $3 AND status = 'pending'`;
  const recorded = [input.delivery_id, input.generation, input.attempt, sent.status, sent.body, sent.durationMs];

  // The endpoint's row before delivery rows, in every transaction that takes both (as deleting an
  // endpoint does, through its cascade), so that no two of them wait for each other.
  if (label === 'success') {
    const stored = await inTransaction(db, async (tx) => {
      await tx.query(
        'UPDATE webhook_endpoints SET failing_since = NULL, last_failure_at = NULL WHERE webhook_id = $1 AND failing_since IS NOT NULL',
        [claimed.webhook_id],
      );
      const { rowCount } = await tx.query(
        `UPDATE webhook_deliveries SET status = 'succeeded', delivered_at = now(), next_attempt_at = NULL, settled_attempts = attempts,
           last_status_code = $4, last_error = NULL, last_response_body = $5, last_duration_ms = $6
         WHERE ${thisAttempt}`,
        recorded,
      );
      return rowCount === 1;
    });
    if (!stored) return standing(deps, input);
    webhookDeliveryLatency.observe((Date.now() - claimed.event_created_at.getTime()) / 1000);
    return { done: true, status: 'succeeded', attempts: input.attempt };
  }

  const delay = backoffMs(input.attempt, settings.retryInitialMs, settings.retryMaxIntervalMs);
  const givesUp = Date.now() + delay > claimed.retrying_since.getTime() + settings.retryForMs;
  const outcome = await inTransaction(db, async (tx) => {
    // Failures are continuous while some delivery keeps retrying (at least every retry interval);
    // after a longer pause the clock starts again. The endpoint is disabled once it has failed
    // for WEBHOOK_DISABLE_AFTER_MS, or when a delivery gives up with no success since it began.
    const { rows } = await tx.query<{ failing_since: Date; disable: boolean }>(
      `UPDATE webhook_endpoints SET
         failing_since = CASE WHEN failing_since IS NULL OR last_failure_at < now() - $2 * interval '1 millisecond'
                              THEN now() ELSE failing_since END,
         last_failure_at = now()
       WHERE webhook_id = $1
       RETURNING failing_since, enabled AND (failing_since <= now() - $3 * interval '1 millisecond'
                                             OR ($4 AND failing_since <= $5)) AS disable`,
      [claimed.webhook_id, 2 * settings.retryMaxIntervalMs + settings.timeoutMs, settings.disableAfterMs, givesUp, claimed.retrying_since],
    );
    const disable = rows[0]?.disable === true;
    if (disable) {
      const reason = `every delivery failed since ${rows[0].failing_since.toISOString()}; the last: ${error}`;
      await tx.query(
        `UPDATE webhook_endpoints SET enabled = false, disabled_at = now(), disabled_reason = $2, updated_at = now()
         WHERE webhook_id = $1 AND enabled`,
        [claimed.webhook_id, reason],
      );
    }
    const { rowCount } = await tx.query(
      `UPDATE webhook_deliveries SET status = $7, settled_attempts = attempts,
         next_attempt_at = CASE WHEN $7 = 'pending' THEN now() + $8 * interval '1 millisecond' END,
         last_status_code = $4, last_error = $9, last_response_body = $5, last_duration_ms = $6
       WHERE ${thisAttempt}`,
      [...recorded, givesUp ? 'failed' : 'pending', delay, error],
    );
    if (disable) await cancelPending(tx, claimed.webhook_id, 'the endpoint was disabled after failing for too long');
    return { disabled: disable, stored: rowCount === 1 };
  });
  // One line per failed attempt, naming the event; never the URL (it may carry a token) or a secret.
  log.warn(
    {
      event: 'webhook_attempt_failed',
      event_id: claimed.event_id,
      event_type: claimed.event_type,
      webhook_id: claimed.webhook_id,
      delivery_id: input.delivery_id,
      attempt: input.attempt,
      status_code: sent.status,
      error,
      ...(givesUp || outcome.disabled ? {} : { retry_in_ms: delay }),
    },
    outcome.disabled
      ? 'webhook attempt failed; the endpoint has failed for too long and is now disabled'
      : givesUp
        ? 'webhook attempt failed; retries are exhausted and the delivery is marked failed'
        : 'webhook attempt failed; it will be retried',
  );
  if (!outcome.stored || outcome.disabled) return standing(deps, input);
  if (givesUp) return { done: true, status: 'failed', attempts: input.attempt };
  return { done: false, next_attempt: input.attempt + 1, retry_in_ms: delay };
}
