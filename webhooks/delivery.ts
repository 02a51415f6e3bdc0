/**
 * One attempt of one delivery, safe to run again: the attempt is claimed in Postgres first (by
 * its number), so a retried activity or a second workflow for the same delivery finds it claimed
 * and does not send twice; the outcome and the next attempt's time are recorded after. Backoff is
 * exponential with jitter, so receivers coming back from an outage are not hit by every retry at
 * once; an endpoint that has only failed for WEBHOOK_DISABLE_AFTER_MS is disabled, with the reason.
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
      WHERE d.delivery_id = $1 AND d.status = 'pending' AND d.attempts = $2 - 1
        AND w.webhook_id = d.webhook_id AND w.enabled AND e.event_id = d.event_id
     RETURNING d.webhook_id, w.url, w.secret_ciphertext,
       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret_ciphertext END AS previous_secret_ciphertext,
       e.event_id, e.type AS event_type, e.created_at AS event_created_at, e.payload::text AS payload, d.retrying_since`,
    [input.delivery_id, input.attempt],
  );
  return rows[0] ?? null;
}

/** Not claimable: where the delivery stands, for the workflow to stop or go on from there. */
async function standing(db: Db, input: AttemptInput): Promise<AttemptResult> {
  const { rows } = await db.query<{ status: DeliveryStatus; attempts: number; next_attempt_at: Date | null; enabled: boolean }>(
    `SELECT d.status, d.attempts, d.next_attempt_at, w.enabled
       FROM webhook_deliveries d JOIN webhook_endpoints w USING (webhook_id) WHERE d.delivery_id = $1`,
    [input.delivery_id],
  );
  const row = rows[0];
  // Deleted with its endpoint.
  if (!row) return { done: true, status: 'cancelled', attempts: 0 };
  if (row.status !== 'pending') return { done: true, status: row.status, attempts: row.attempts };
  if (!row.enabled) {
    await db.query(
      `UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL, last_error = 'the endpoint is disabled'
       WHERE delivery_id = $1 AND status = 'pending'`,
      [input.delivery_id],
    );
    return { done: true, status: 'cancelled', attempts: row.attempts };
  }
  // This attempt was claimed already (this activity's earlier try, or another run): go on after it.
  const wait = row.next_attempt_at ? Math.max(0, row.next_attempt_at.getTime() - Date.now()) : 0;
  return { done: false, next_attempt: row.attempts + 1, retry_in_ms: wait };
}

function resultLabel(r: SendResult): string {
  if (r.status !== null) return r.status >= 200 && r.status < 300 ? 'success' : 'http_error';
  return r.failure ?? 'network';
}

export async function attemptDelivery(deps: DeliveryDeps, input: AttemptInput): Promise<AttemptResult> {
  const { db, config, log } = deps;
  const settings = config.webhooks;
  const claimed = await claim(db, input);
  if (!claimed) return standing(db, input);

  let sent: SendResult;
  try {
    const secrets = [claimed.secret_ciphertext, claimed.previous_secret_ciphertext]
      .filter((s) => s !== null)
      .map((s) => deps.secrets.open(s));
    sent = await send({
      url: claimed.url,
      headers: signedHeaders(secrets, claimed.event_id, claimed.payload, new Date()),
      body: claimed.payload,
      timeoutMs: settings.timeoutMs,
      bodyLimit: settings.responseBodyLimit,
      allowPrivate: settings.allowPrivate,
    });
  } catch (err) {
    // The secret cannot be opened (WEBHOOK_SECRETS_KEY changed): a failed attempt like any other,
    // visible on the delivery, instead of an activity failing forever.
    sent = { status: null, body: null, error: (err as Error).message, failure: 'network', durationMs: 0 };
  }
  const label = resultLabel(sent);
  webhookDeliveries.inc({ result: label });
  webhookAttemptDuration.observe({ result: label }, sent.durationMs / 1000);
  const error = label === 'success' ? null : (sent.error ?? `the receiver answered HTTP ${sent.status}`);
  const outcome = {
    status: sent.status,
    error,
    body: sent.body,
    duration: sent.durationMs,
  };

  // The endpoint's row before delivery rows, in every transaction that takes both (as deleting an
  // endpoint does, through its cascade), so that no two of them wait for each other.
  if (label === 'success') {
    await inTransaction(db, async (tx) => {
      await tx.query('UPDATE webhook_endpoints SET failing_since = NULL WHERE webhook_id = $1 AND failing_since IS NOT NULL', [
        claimed.webhook_id,
      ]);
      await tx.query(
        `UPDATE webhook_deliveries SET status = 'succeeded', delivered_at = now(), next_attempt_at = NULL,
           last_status_code = $3, last_error = NULL, last_response_body = $4, last_duration_ms = $5
         WHERE delivery_id = $1 AND attempts = $2 AND status = 'pending'`,
        [input.delivery_id, input.attempt, outcome.status, outcome.body, outcome.duration],
      );
    });
    webhookDeliveryLatency.observe((Date.now() - claimed.event_created_at.getTime()) / 1000);
    return { done: true, status: 'succeeded', attempts: input.attempt };
  }

  const delay = backoffMs(input.attempt, settings.retryInitialMs, settings.retryMaxIntervalMs);
  const givesUp = Date.now() + delay > claimed.retrying_since.getTime() + settings.retryForMs;
  const disabled = await inTransaction(db, async (tx) => {
    // Only the first failure after a success (and disabling) writes the endpoint's row, so the
    // failed attempts of a busy endpoint do not queue up behind one another on it.
    await tx.query('UPDATE webhook_endpoints SET failing_since = now() WHERE webhook_id = $1 AND failing_since IS NULL', [
      claimed.webhook_id,
    ]);
    const { rows } = await tx.query<{ failing_since: Date; disable: boolean }>(
      `SELECT failing_since, enabled AND failing_since <= now() - $2 * interval '1 millisecond' AS disable
         FROM webhook_endpoints WHERE webhook_id = $1`,
      [claimed.webhook_id, settings.disableAfterMs],
    );
    const disable = rows[0]?.disable === true;
    if (disable) {
      const reason = `every delivery failed since ${rows[0].failing_since.toISOString()}; the last: ${outcome.error}`;
      await tx.query(
        `UPDATE webhook_endpoints SET enabled = false, disabled_at = now(), disabled_reason = $2, updated_at = now()
         WHERE webhook_id = $1 AND enabled`,
        [claimed.webhook_id, reason],
      );
    }
    await tx.query(
      `UPDATE webhook_deliveries SET status = $3, next_attempt_at = CASE WHEN $3 = 'pending' THEN now() + $4 * interval '1 millisecond' END,
         last_status_code = $5, last_error = $6, last_response_body = $7, last_duration_ms = $8
       WHERE delivery_id = $1 AND attempts = $2 AND status = 'pending'`,
      [
        input.delivery_id,
        input.attempt,
        givesUp ? 'failed' : 'pending',
        delay,
        outcome.status,
        outcome.error,
        outcome.body,
        outcome.duration,
      ],
    );
    if (disable) await cancelPending(tx, claimed.webhook_id, 'the endpoint was disabled after failing for too long');
    return disable;
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
      status_code: outcome.status,
      error: outcome.error,
      ...(givesUp || disabled ? {} : { retry_in_ms: delay }),
    },
    disabled
      ? 'webhook attempt failed; the endpoint has failed for too long and is now disabled'
      : givesUp
        ? 'webhook attempt failed; retries are exhausted and the delivery is marked failed'
        : 'webhook attempt failed; it will be retried',
  );
  if (disabled) return { done: true, status: 'cancelled', attempts: input.attempt };
  if (givesUp) return { done: true, status: 'failed', attempts: input.attempt };
  return { done: false, next_attempt: input.attempt + 1, retry_in_ms: delay };
}
